import { readFileSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kiln } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-text-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const out = (name: string) => join(dir, name);

/** 2,205 bytes of ten words in a seeded order: 1,984 to train on (61 steps of 4 windows of 8), 221 held out. */
function words(): string {
  const list = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'dog', 'ran', 'far'];
  let s = 1;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % list.length;
  let text = list[next()]!;
  while (text.length < 2205) text += ` ${list[next()]}`;
  return text.slice(0, 2205);
}
const text = out('words.txt');
writeFileSync(text, words());

const model = 'test/fixtures/models/byte-bigram.ts';
const base = ['train', model, '--data', text, '--threads', '1'];
const losses = (f: string) => readFileSync(out(f), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);

describe('kiln train on text', () => {
  it('trains on a .txt file: windows and steps in the header, loss and bits per byte per epoch, at the end and in the metrics', () => {
    const r = kiln([...base, '--metrics-json', out('m.json'), '--log', out('full.jsonl'), '--save', out('w.safetensors')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`kiln: training ByteBigram (${model}) on words.txt: 1,984 bytes (221 held out), context 8, 61 steps per epoch, batch 4, 2 epochs, adam lr 0.01, seed 0, backend wasm`);
    // 221 held-out bytes are 27 windows of 8: batches of 4 and a last of 3.
    expect(r.stderr).toMatch(/^kiln: compiled the train step \(batch 4\) and the eval step \(batch 4 and 3\) in \d+\.\d\d s$/m);
    const epochs = [...r.stdout.matchAll(/^Epoch (\d): train loss ([\d.]+), val loss ([\d.]+), ([\d.]+) bits per byte \([\d.]+ s\)$/gm)];
    expect(epochs.map((m) => m[1])).toEqual(['1', '2']);
    for (const m of epochs) expect(Number(m[4])).toBeCloseTo(Number(m[3]) / Math.LN2, 3);
    expect(r.stdout).toMatch(/^kiln: 122 steps in [\d.]+ s \([\d,]+ tokens\/s training\); val loss [\d.]+, [\d.]+ bits per byte$/m);
    expect(r.stdout).not.toContain('accuracy');
    const m = JSON.parse(readFileSync(out('m.json'), 'utf8'));
    expect(Object.keys(m)).toEqual(['backend', 'epochs', 'steps', 'trainLoss', 'valLoss', 'valBitsPerByte', 'tokensPerSec', 'seconds']);
    expect(m.valBitsPerByte).toBeCloseTo(m.valLoss / Math.LN2, 12);
    // Ten words and spaces: a bigram of bytes ends far below the 8 bits of a uniform guess, and the first step is about ln 256.
    expect(m.valBitsPerByte).toBeLessThan(4);
    const log = losses('full.jsonl');
    expect(log).toHaveLength(122);
    expect(log[0]).toBeGreaterThan(5);
  });

  it('a resumed run continues bit for bit, mid-epoch and across the epoch boundary', () => {
    const part = kiln([...base, '--max-steps', '70', '--checkpoint', out('text.ckpt'), '--log', out('a.jsonl')]);
    expect(part.code, part.stderr).toBe(0);
    const rest = kiln([...base, '--resume', out('text.ckpt'), '--log', out('b.jsonl')]);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stderr).toContain('resuming from');
    expect([...losses('a.jsonl'), ...losses('b.jsonl')]).toEqual(losses('full.jsonl'));
    // Other windows are another run: a resume with --no-shuffle is refused.
    const other = kiln([...base, '--resume', out('text.ckpt'), '--no-shuffle']);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('shuffle: checkpoint has true, this run has false');
  });

  it('--no-shuffle trains on consecutive windows, and the reference backend agrees with wasm', () => {
    const wasm = kiln([...base, '--no-shuffle', '--max-steps', '20', '--log', out('ns-wasm.jsonl')]);
    expect(wasm.code, wasm.stderr).toBe(0);
    const ref = kiln(['train', model, '--data', text, '--backend', 'reference', '--no-shuffle', '--max-steps', '20', '--log', out('ns-ref.jsonl')]);
    expect(ref.code, ref.stderr).toBe(0);
    const a = losses('ns-wasm.jsonl');
    const b = losses('ns-ref.jsonl');
    // f32 sums in another order: 1e-5 relative is far above their rounding and far below a step's change.
    a.forEach((l, i) => expect(Math.abs(l - b[i]!) / Math.abs(b[i]!)).toBeLessThan(1e-5));
    expect(a.slice(1)).not.toEqual(losses('full.jsonl').slice(1, 20));
  });

  it('kiln eval reads the weights back and reports the held-out loss in bits per byte', () => {
    const m = JSON.parse(readFileSync(out('m.json'), 'utf8'));
    const ev = kiln(['eval', model, '--data', text, '--weights', out('w.safetensors')]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toContain('ByteBigram with');
    expect(ev.stdout).toContain('on words.txt (the last 221 bytes: 27 windows of 8)');
    expect(ev.stdout).toContain(`val loss ${m.valLoss.toFixed(4)}, ${m.valBitsPerByte.toFixed(4)} bits per byte`);
  });

  it('training.data names the file relative to the model file; --val-fraction moves the split', () => {
    const local = out('local-model.ts');
    writeFileSync(local, readFileSync(model, 'utf8').replace("dataset: 'text',", "dataset: 'text', data: 'words.txt', valFraction: 0.5,"));
    const r = kiln(['train', relative(process.cwd(), local), '--max-steps', '1', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('on words.txt: 1,102 bytes (1,103 held out), context 8, 34 steps per epoch');
    const flag = kiln(['train', relative(process.cwd(), local), '--max-steps', '1', '--threads', '1', '--val-fraction', '0.25']);
    expect(flag.stderr).toContain('on words.txt: 1,653 bytes (552 held out)');
  });
});

describe('bad text input', () => {
  it('an empty file, a file too short for a window, and a bad --val-fraction are each one message; nothing is written', () => {
    writeFileSync(out('empty.txt'), '');
    let r = kiln([...base.slice(0, 2), '--data', out('empty.txt'), '--save', out('never.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${out('empty.txt')}: is empty`);
    writeFileSync(out('short.txt'), 'hello world, not much');
    r = kiln([...base.slice(0, 2), '--data', out('short.txt'), '--save', out('never.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${out('short.txt')}: 21 bytes split into 18 to train on and 3 held out (val fraction 0.1); each part needs a window of 9 bytes (context 8 and the byte after it)`);
    expect(r.stderr).toContain('hint: use a text of at least 81 bytes, a shorter context (training.input), or another --val-fraction');
    r = kiln([...base, '--val-fraction', '1.5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: --val-fraction must be a number between 0 and 1 (exclusive); got '1.5'");
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(out('never.safetensors'))).toBe(false);
  });

  it('a text model without a file, text options on images, and an image model on text are refused, saying what to do', () => {
    let r = kiln(['train', model]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${model}: training.dataset is 'text' but no file is named`);
    // A text model takes a file of any name; a missing one is named as a text file.
    r = kiln(['train', model, '--data', out('corpus.md')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${out('corpus.md')}: file not found`);
    r = kiln(['train', 'samples/mlp.ts', '--val-fraction', '0.2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: --val-fraction applies to text data, but this run trains on mnist');
    r = kiln(['train', 'samples/mlp.ts', '--data', text]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: samples/mlp.ts expects inputs of shape [1, 28, 28], but text data is windows of bytes: training.input must be [T], the context length');
  });
});
