import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../src/runtime/safetensors-file.ts';
import { kiln, kilnAsync, miniMnist, typeErrorModel } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-cli-'));
const data = miniMnist(join(dir, 'mini'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const out = (name: string) => join(dir, name);

describe('kiln train / eval on an IDX dataset folder', () => {
  it('trains, prints the textbook lines, writes weights, log and metrics; eval reads the weights back', () => {
    const r = kiln(['train', 'samples/simple-cnn.ts', '--data', data, '--batch-size', '32', '--save', out('w.safetensors'), '--log', out('log.jsonl'), '--metrics-json', out('m.json'), '--backend', 'reference']);
    expect(r.code, r.stderr).toBe(0);
    // Results on stdout (`kiln train ... > log` keeps them), progress and diagnostics on stderr.
    expect(r.stdout).toMatch(/^Train Batch: 0, Loss: \d\.\d{4}$/m);
    expect(r.stdout).toMatch(/^kiln: 8 steps in [\d.]+ s \([\d,]+ images\/s training\); test accuracy [\d.]+%, test loss [\d.]+$/m);
    expect(r.stderr).not.toMatch(/Train Batch|Epoch 1/);
    expect(r.stderr).toMatch(/^kiln: compiled the train step \(batch 32\) and the eval step \(batch 100\) in \d+\.\d\d s$/m);
    expect(r.stdout).toMatch(/Epoch 1: train loss [\d.]+, test loss [\d.]+, test accuracy [\d.]+% \([\d.]+ s\)/);
    const log = readFileSync(out('log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(8);
    expect(Object.keys(log[0])).toEqual(['epoch', 'step', 'loss']);
    const m = JSON.parse(readFileSync(out('m.json'), 'utf8'));
    expect(Object.keys(m)).toEqual(['backend', 'epochs', 'steps', 'trainLoss', 'testLoss', 'testAccuracy', 'imagesPerSec', 'seconds']);
    expect(m.steps).toBe(8);
    const w = readSafetensors(out('w.safetensors'));
    expect(Object.keys(w.tensors).sort()).toEqual(['conv1.bias', 'conv1.weight', 'fc1.bias', 'fc1.weight']);

    const ev = kiln(['eval', 'samples/simple-cnn.ts', '--data', data, '--weights', out('w.safetensors')]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toContain(`accuracy ${(100 * m.testAccuracy).toFixed(2)}%`);
    expect(ev.stdout).toMatch(/confusion matrix/);
  });

  it('a learning-rate schedule: the header says it, a resumed run continues it bit for bit, --schedule picks or drops it', () => {
    const args = ['train', 'samples/mlp.ts', '--data', data, '--batch-size', '32', '--optimizer', 'sgd', '--lr', '0.1', '--momentum', '0.9', '--backend', 'wasm'];
    const full = kiln([...args, '--schedule', 'onecycle', '--log', out('full.jsonl')]);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toContain('sgd lr 0.1, one-cycle schedule (max lr 0.1, cos, momentum 0.95–0.85), seed 0');
    const part = kiln([...args, '--schedule', 'onecycle', '--max-steps', '3', '--checkpoint', out('sched.ckpt'), '--log', out('a.jsonl')]);
    expect(part.code, part.stderr).toBe(0);
    // --schedule is part of the run: the checkpoint's optimizer holds it, so resuming without it is refused.
    expect(kiln([...args, '--resume', out('sched.ckpt')]).code).toBe(1);
    const rest = kiln([...args, '--schedule', 'onecycle', '--resume', out('sched.ckpt'), '--log', out('b.jsonl')]);
    expect(rest.code, rest.stderr).toBe(0);
    const losses = (f: string) => readFileSync(out(f), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
    expect([...losses('a.jsonl'), ...losses('b.jsonl')]).toEqual(losses('full.jsonl'));
    const cosine = kiln([...args, '--schedule', 'cosine', '--max-steps', '1']);
    expect(cosine.stderr).toContain('sgd lr 0.1, cosine schedule to 0, seed 0');
    expect(kiln([...args, '--schedule', 'none', '--max-steps', '1']).stderr).toContain('sgd lr 0.1, seed 0');
    expect(kiln([...args, '--schedule', 'step']).stderr).toContain("--schedule must be one of cosine, onecycle, none; got 'step'");
  });

  it('--init with NaN weights names the tensor and element; a run that fails before a step leaves no --log file', () => {
    const w = readSafetensors(out('w.safetensors'));
    w.tensors['fc1.bias']!.data[3] = NaN;
    writeSafetensors(out('nan.safetensors'), w.tensors);
    const r = kiln(['train', 'samples/simple-cnn.ts', '--data', data, '--init', out('nan.safetensors'), '--log', out('early.jsonl')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nan.safetensors: fc1.bias holds NaN at element 3: the weights are not finite');
    expect(existsSync(out('early.jsonl'))).toBe(false);
  });

  it('--init with weights of another shape lists the differences', () => {
    const r = kiln(['train', 'samples/mlp.ts', '--data', data, '--init', 'test/fixtures/pytorch/simple-cnn-init.safetensors']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/layers\.1\.weight: missing from the file/);
    expect(r.stderr).toMatch(/conv1\.weight: in the file \[32, 1, 3, 3\] but not in the model/);
  });

  it('bad data: a missing folder and a truncated file get one clear message each', () => {
    const missing = kiln(['train', 'samples/mlp.ts', '--data', out('nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: .*nope/);
    const broken = miniMnist(out('broken'));
    writeFileSync(join(broken, 'train-labels-idx1-ubyte.gz'), Buffer.from([0x1f, 0x8b, 0, 1, 2]));
    const r = kiln(['train', 'samples/mlp.ts', '--data', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/train-labels-idx1-ubyte/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('bad data: no test images, and one label past the model\'s classes, each named; no weights written', () => {
    const empty = miniMnist(out('empty-test'), 64, 0);
    let r = kiln(['train', 'samples/mlp.ts', '--data', empty, '--save', out('empty.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: .*t10k-images-idx3-ubyte.*: holds no images/);
    expect(existsSync(out('empty.safetensors'))).toBe(false);
    const twelve = miniMnist(out('label-12'), 64, 10);
    const labels = join(twelve, 'train-labels-idx1-ubyte.gz');
    const raw = gunzipSync(readFileSync(labels));
    raw[8 + 5] = 12;
    writeFileSync(labels, gzipSync(raw));
    r = kiln(['train', 'samples/mlp.ts', '--data', twelve]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: training label 12 at index 5 of .* is out of range for samples\/mlp\.ts, which outputs 10 classes \(labels 0\.\.9\)/);
  });

  it("the model's checks finish on a worker while the steps compile: a type error that tracing never sees still stops the run before its first step", () => {
    // The line runs (an unused local), so the model traces, compiles and would train: only the
    // type checker, on its worker, knows it is wrong, and its verdict must come before step 1.
    const { path: model, error } = typeErrorModel(out('type-error.ts'));
    const cache = mkdtempSync(join(tmpdir(), 'kiln-lint-cache-'));
    const r = kiln(['train', model, '--data', data, '--max-steps', '1', '--save', out('type-error.safetensors'), '--log', out('type-error.log')], process.cwd(), { KILN_CACHE_DIR: cache });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/kiln: checking .*type-error\.ts/);
    expect(r.stderr).toMatch(error);
    expect(r.stdout).not.toMatch(/Train Batch/);
    expect(existsSync(out('type-error.safetensors')) || existsSync(out('type-error.log'))).toBe(false);
    // An error the run meets before its first step (another model's weights for --init) waits for
    // the checks: theirs is the one reported, as when they ran first.
    const cnn = kiln(['train', 'samples/simple-cnn.ts', '--data', data, '--max-steps', '1', '--save', out('cnn-init.safetensors')]);
    expect(cnn.code, cnn.stderr).toBe(0);
    const init = kiln(['train', model, '--data', data, '--max-steps', '1', '--init', out('cnn-init.safetensors')], process.cwd(), { KILN_CACHE_DIR: cache });
    expect(init.code).toBe(1);
    expect(init.stderr).toMatch(error);
    // The fixed file passes, is remembered, and is not checked again.
    writeFileSync(model, readFileSync('samples/mlp.ts', 'utf8'));
    for (const checking of [true, false]) {
      const ok = kiln(['train', model, '--data', data, '--max-steps', '1'], process.cwd(), { KILN_CACHE_DIR: cache });
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr.includes('kiln: checking'), ok.stderr).toBe(checking);
    }
    rmSync(cache, { recursive: true, force: true });
  });

  it('bad flags are named', () => {
    expect(kiln(['train', 'samples/mlp.ts', '--lr', 'fast']).stderr).toMatch(/--lr must be a non-negative number; got 'fast'/);
    expect(kiln(['train', 'samples/mlp.ts', '--optimizer', 'rmsprop']).stderr).toMatch(/--optimizer must be one of sgd, adam, adamw/);
    expect(kiln(['train', 'samples/simple-cnn.ts', '--momentum', '0.9']).stderr).toContain("error: --momentum applies to SGD; this run's optimizer is adam");
  });

  it('a diverging run is the user\'s error, with the step and what to try', () => {
    const r = kiln(['train', 'samples/mlp.ts', '--data', data, '--optimizer', 'sgd', '--lr', '1e12', '--log', out('diverged.jsonl')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: the loss became (NaN|Infinity) at step \d+ \(epoch 1, batch \d+\): training diverged/);
    expect(r.stderr).toContain('hint: lower the learning rate (--lr)');
    expect(r.stderr).not.toContain('bug in kiln');
  });

  it.each(['wasm', 'reference'])('--check-numerics names the step, the op, the kernel and the model line where a diverging run went non-finite (%s)', (backend) => {
    const r = kiln(['train', 'samples/mlp.ts', '--data', data, '--optimizer', 'sgd', '--lr', '1e12', '--backend', backend, '--check-numerics', '--log', out(`numerics-${backend}.jsonl`)]);
    expect(r.code, r.stderr).toBe(1);
    const m = /^error: samples\/mlp\.ts:(\d+):\d+: --check-numerics: step (\d+) \(epoch 1, batch (\d+)\): (-?Infinity|NaN) first appears in %\d+ = (\w+) of ([\w.]+) \((forward pass|backward pass: a gradient|parameter update)\), computed by kernel k\d+_\w+; after the step (the loss is NaN|[\w.]+ holds (NaN|-?Infinity))$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![3])).toBe(Number(m![2]) + 1);
    expect(r.stderr).toMatch(/hint: .*lower the learning rate \(--lr\)/);
    // The log keeps the steps that ran before the one that failed.
    expect(readFileSync(out(`numerics-${backend}.jsonl`), 'utf8').trim().split('\n')).toHaveLength(Number(m![2]));
  });

  it('--check-numerics: NaN from an op outside its domain in the first forward pass, at its line', () => {
    const r = kiln(['train', 'test/fixtures/models/nan-forward.ts', '--data', data, '--check-numerics', '--save', out('nan-forward.safetensors')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: test\/fixtures\/models\/nan-forward\.ts:9:\d+: --check-numerics: step 0 \(epoch 1, batch 1\): NaN first appears in %\d+ = sqrt \(forward pass\), computed by kernel k\d+_\w+; after the step the loss is NaN$/m);
    expect(r.stderr).toContain("hint: an activation overflowed or an op got an input outside its domain");
    expect(existsSync(out('nan-forward.safetensors'))).toBe(false);
    // Without the flag the same run is a divergence at step 0, which points at the flag.
    expect(kiln(['train', 'test/fixtures/models/nan-forward.ts', '--data', data]).stderr).toContain('--check-numerics finds the op and model line where it began');
  });

  it('colour images: a 4-d IDX file [N, 3, H, W] trains a model of 3-channel inputs', () => {
    const colour = out('colour');
    mkdirSync(colour);
    const file = (name: string, magic: number, dims: number[], n: number, value: (i: number) => number) => {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head.writeUInt32BE(magic, 0);
      dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
      writeFileSync(join(colour, `${name}.gz`), gzipSync(Buffer.concat([head, Buffer.from(Array.from({ length: n }, (_, i) => value(i)))])));
    };
    for (const [split, count] of [['train', 12], ['t10k', 5]] as const) {
      file(`${split}-images-idx3-ubyte`, 0x804, [count, 3, 8, 8], count * 192, (i) => (i * 37) % 256);
      file(`${split}-labels-idx1-ubyte`, 0x801, [count], count, (i) => i % 10);
    }
    const r = kiln(['train', 'test/fixtures/models/colour-mlp.ts', '--data', colour, '--backend', 'reference']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kiln: 3 steps in/);
    const gray = kiln(['train', 'samples/mlp.ts', '--data', colour]);
    expect(gray.code).toBe(1);
    expect(gray.stderr).toContain('samples/mlp.ts expects inputs of shape [1, 28, 28] but colour has images of shape [3, 8, 8]');
  });

  it('CIFAR-10 binary batches with training.augment: a run resumed mid-epoch ends bitwise equal; other augmentation cannot resume it', () => {
    const c10 = out('cifar-10-batches-bin');
    mkdirSync(c10);
    const batch = (n: number, first: number) => Buffer.from(Array.from({ length: n * 3073 }, (_, i) => (i % 3073 === 0 ? (first + i / 3073) % 10 : (i * 13 + first) % 256)));
    for (let k = 1; k <= 5; k++) writeFileSync(join(c10, `data_batch_${k}.bin`), batch(3, 3 * k));
    writeFileSync(join(c10, 'test_batch.bin'), batch(4, 0));
    const run = (...rest: string[]) => kiln(['train', 'test/fixtures/models/cifar-linear.ts', '--data', c10, '--backend', 'reference', ...rest]);
    const full = run('--save', out('c10-full.safetensors'));
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toContain('on cifar-10-batches-bin: 15 images');
    expect(full.stdout).toMatch(/kiln: 8 steps in/);
    const part = run('--max-steps', '3', '--checkpoint', out('c10-ck.safetensors'));
    expect(part.code, part.stderr).toBe(0);
    const rest = run('--resume', out('c10-ck.safetensors'), '--save', out('c10-rest.safetensors'));
    expect(rest.code, rest.stderr).toBe(0);
    expect(readFileSync(out('c10-rest.safetensors')).equals(readFileSync(out('c10-full.safetensors')))).toBe(true);
    // The flag overrides the model's flip; the run differs, and its checkpoint is not this run's.
    const other = run('--resume', out('c10-ck.safetensors'), '--horizontal-flip', '0');
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('augment: checkpoint has {"randomCrop":{"size":32,"padding":4},"horizontalFlip":0.5}, this run has {"randomCrop":{"size":32,"padding":4},"horizontalFlip":0}');
  });

  it('a model too large for any backend is the user\'s error, before anything is allocated', () => {
    const r = kiln(['train', 'test/fixtures/models/huge-linear.ts', '--data', data]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: test\/fixtures\/models\/huge-linear\.ts: 10,000,107,850 parameters with their optimizer state need [\d.]+ GiB; kiln holds at most 4 GiB/);
    expect(r.stderr).not.toContain('bug in kiln');
  });

  it('--threads: capped at the cores with a message, refused by backends without threads', () => {
    const many = kiln(['train', 'samples/mlp.ts', '--data', data, '--max-steps', '1', '--threads', '1000', '--metrics-json', out('one-step.json')]);
    expect(many.code, many.stderr).toBe(0);
    // A run cut short by --max-steps trained in one epoch, as its `Epoch 1` line says.
    expect(JSON.parse(readFileSync(out('one-step.json'), 'utf8'))).toMatchObject({ steps: 1, epochs: 1 });
    expect(many.stderr).toMatch(/--threads 1000 is more than this machine's \d+ cores; using \d+/);
    const ref = kiln(['train', 'samples/mlp.ts', '--data', data, '--backend', 'reference', '--threads', '2']);
    expect(ref.code).toBe(1);
    expect(ref.stderr).toContain('error: --threads applies to the wasm backend, not reference');
  });

  it('a last batch that batch norm cannot train on (one example) fails before training', () => {
    const r = kiln(['train', 'samples/lenet.ts', '--data', data, '--batch-size', '255']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/samples\/lenet\.ts:\d+:\d+: the last batch of each epoch holds 1 of the 256 images \(batch 255\): BatchNorm1d 'bn3' expects more than 1 value per channel/);
    expect(r.stderr).toContain('hint: choose a --batch-size that leaves a last batch of 2 or more (e.g. 254)');
    expect(r.stdout).not.toContain('Train Batch');
  });

  it('an output path that cannot be written fails before training, naming the flag', () => {
    for (const [flag, path, problem] of [
      ['--save', out('missing/w.safetensors'), `directory ${out('missing')} does not exist`],
      ['--log', out('missing/log.jsonl'), `directory ${out('missing')} does not exist`],
      ['--metrics-json', dir, 'is a directory'],
      ['--checkpoint', join(data, 'train-images-idx3-ubyte.gz', 'c.safetensors'), `${join(data, 'train-images-idx3-ubyte.gz')} is not a directory`],
    ]) {
      const r = kiln(['train', 'samples/mlp.ts', '--data', data, flag!, path!]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: ${flag} ${path}: ${problem}`);
      expect(r.stderr).not.toMatch(/Train Batch|training/);
    }
  });

  it('Ctrl-C finishes the step, writes a checkpoint and exits; --resume finishes the run', async () => {
    const ckpt = out('int.safetensors');
    let sent = false;
    const r = await kilnAsync(['train', 'samples/mlp.ts', '--data', data, '--batch-size', '16', '--checkpoint', ckpt], (line, kill) => {
      if (!sent && line.startsWith('Train Batch: 0')) {
        sent = true;
        kill('SIGINT');
      }
    });
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/stopped at step \d+; checkpoint written to/);
    expect(existsSync(ckpt)).toBe(true);
    const end = out('end.safetensors');
    const resumed = kiln(['train', 'samples/mlp.ts', '--data', data, '--batch-size', '16', '--resume', ckpt, '--checkpoint', end]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .* at step \d+/);
    expect(resumed.stdout).toMatch(/16 steps \(\d+ in this run\) in/);
    // A run with --checkpoint leaves one at its end, and eval reads a checkpoint's weights.
    expect(resumed.stderr).toContain(`kiln: checkpoint written to ${end}`);
    const ev = kiln(['eval', 'samples/mlp.ts', '--data', data, '--weights', end]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/accuracy \d+\.\d\d%/);
  });
});
