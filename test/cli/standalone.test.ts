import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kiln, typeErrorModel, type Run } from './helpers.ts';

// One bundle for the file: SimpleCNN on the bundled MNIST, wasm modules for 1 and 2 threads.
const dir = mkdtempSync(join(tmpdir(), 'kiln-standalone-'));
const bundle = join(dir, 'simple-cnn.kiln');
// The copy that trains: in a folder of its own, with no node_modules anywhere above it.
const away = join(mkdtempSync(join(tmpdir(), 'kiln-away-')), 'model');
let compiled: Run;

/** Runs `node train.mjs` of a bundle folder, from that folder. */
function trainMjs(folder: string, args: string[]): Run {
  const r = spawnSync(process.execPath, [join(folder, 'train.mjs'), ...args], { cwd: folder, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const losses = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);

/** A copy of the bundle with one change, for the broken-bundle cases. */
function broken(name: string, change: (folder: string) => void): string {
  const f = join(dir, name);
  cpSync(bundle, f, { recursive: true });
  change(f);
  return f;
}

beforeAll(() => {
  compiled = kiln(['compile', 'samples/simple-cnn.ts', '--standalone', '-o', bundle, '--threads', '1,2']);
  if (compiled.code === 0) cpSync(bundle, away, { recursive: true });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(away, '..'), { recursive: true, force: true });
});

describe('kiln compile --standalone', () => {
  it('writes the folder: manifest, modules for every step, weights, data, runtime, page', () => {
    expect(compiled.code, compiled.stderr).toBe(0);
    expect(compiled.stderr).toMatch(/runtime: kiln-runtime\.mjs \d+ KiB \(\d+ KiB gzipped\)/);
    const m = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ format: 'kiln-standalone', version: 2, name: 'SimpleCNN', input: [1, 28, 28], classes: 10, counts: { train: 60000, test: 10000 } });
    expect(m.steps).toEqual([{ stage: 'train', batchSize: 64 }, { stage: 'train', batchSize: 32 }, { stage: 'eval', batchSize: 1000 }]);
    // 3 steps × threads 1, 2 × relaxed SIMD and SIMD128.
    expect(m.wasm.modules).toHaveLength(12);
    expect(m.webgpu.steps).toHaveLength(3);
    for (const f of ['index.html', 'app.js', 'worker.js', 'style.css', 'kiln-runtime.mjs', 'train.mjs', 'params.safetensors', 'data/train-images-idx3-ubyte.gz']) expect(existsSync(join(bundle, f)), f).toBe(true);
    // Every file but the manifest is listed with its hash.
    const all = (d: string, pre = ''): string[] => readdirSync(join(d, pre), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? all(d, join(pre, e.name)) : [join(pre, e.name)]));
    expect(all(bundle).filter((f) => f !== 'manifest.json').sort()).toEqual(Object.keys(m.files).sort());
  });

  it("writes nothing for a model its checks reject, though the steps were built beside them (a type error tracing never sees)", () => {
    const { path: model, error } = typeErrorModel(join(dir, 'type-error.ts'));
    const out = join(dir, 'type-error.kiln');
    const r = kiln(['compile', model, '--standalone', '-o', out, '--backend', 'wasm', '--threads', '1'], process.cwd(), { KILN_CACHE_DIR: 'off' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(error);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('type-error.kiln'))).toEqual([]);
  });

  it('the runtime holds nothing of the compiler and no static node: import', () => {
    const rt = readFileSync(join(bundle, 'kiln-runtime.mjs'), 'utf8');
    for (const word of ['binaryen', 'ts-morph', 'esbuild', 'wgsl_reflect', 'typescript']) expect(rt.includes(word), word).toBe(false);
    expect(rt).not.toMatch(/^import\s[^(]*from\s*["']node:/m);
    expect(rt).not.toMatch(/(^|[;\s])import\s*["']/m);
  });

  it('trains with plain node in a folder with no node_modules, bitwise like kiln train', () => {
    expect(existsSync(join(away, 'node_modules'))).toBe(false);
    const log = join(away, 'steps.jsonl');
    const r = trainMjs(away, ['--max-steps', '200', '--threads', '2', '--log', log, '--save', join(away, 'w.safetensors'), '--metrics-json', join(away, 'm.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/kiln: training SimpleCNN \(samples\/simple-cnn\.ts\) on mnist: 60,000 images, batch 64, 1 epoch, adam lr 0\.001, seed 0, backend wasm/);
    expect(r.stderr).toMatch(/kiln: wasm, 2 threads/);
    expect(r.stderr).toMatch(/kiln: loaded the train step \(batch 64 and 32\) and the eval step \(batch 1000\)/);
    expect(r.stdout).toMatch(/test accuracy \d+\.\d\d%/);
    const ref = join(dir, 'kiln.jsonl');
    const k = kiln(['train', 'samples/simple-cnn.ts', '--max-steps', '200', '--threads', '2', '--log', ref]);
    expect(k.code, k.stderr).toBe(0);
    const a = losses(log);
    expect(a).toHaveLength(200);
    expect(a).toEqual(losses(ref));
    // The same lines as kiln train's, figures and all, bar the timings.
    const tail = (s: string) => s.split('\n').filter((l) => /^(Train Batch|Epoch|kiln: \d+ steps)/.test(l)).map((l) => l.replace(/in [\d.]+ s \([\d,]+ images\/s training\)|\([\d.]+ s\)$/, ''));
    expect(tail(r.stdout)).toEqual(tail(k.stdout));
    expect(JSON.parse(readFileSync(join(away, 'm.json'), 'utf8'))).toMatchObject({ backend: 'wasm', steps: 200 });
  });

  it('refuses a bundle of another format version, naming the file', () => {
    const f = broken('version', (d) => {
      const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
      writeFileSync(join(d, 'manifest.json'), JSON.stringify({ ...m, version: 99 }));
    });
    const r = trainMjs(f, ['--max-steps', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: .*manifest\.json is a version 99 standalone bundle; this runtime reads version 2/);
    expect(r.stderr).toMatch(/hint: rebuild the bundle with `kiln compile MODEL\.ts --standalone`/);
  });

  it('refuses a changed module and a missing file, naming them', () => {
    const changed = broken('changed', (d) => {
      const w = join(d, 'wasm', 'train-64-t1-relaxed.wasm');
      const b = readFileSync(w);
      b[b.length - 3] ^= 1;
      writeFileSync(w, b);
    });
    let r = trainMjs(changed, ['--max-steps', '1', '--threads', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/train-64-t1-relaxed\.wasm has changed since the bundle was written \(SHA-256 [0-9a-f]{12}…, manifest\.json says [0-9a-f]{12}…\)/);
    const missing = broken('missing', (d) => rmSync(join(d, 'params.safetensors')));
    r = trainMjs(missing, ['--max-steps', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/params\.safetensors is missing from the bundle/);
    expect(r.stderr).not.toMatch(/internal error/);
  });

  it('says which thread counts it holds, and what webgpu needs where Dawn is not installed', () => {
    let r = trainMjs(away, ['--max-steps', '1', '--threads', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/this bundle holds wasm modules for 1, 2 threads, not 3/);
    expect(r.stderr).toMatch(/hint: pass one of those, or compile the bundle with --threads 3/);
    r = trainMjs(away, ['--max-steps', '1', '--backend', 'webgpu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the webgpu backend needs the 'webgpu' npm package/);
  });

  it('kiln train and kiln eval take the folder, and refuse flags the compiled steps fix', () => {
    const log = join(dir, 'dir.jsonl');
    let r = kiln(['train', bundle, '--max-steps', '200', '--threads', '2', '--log', log, '--save', join(dir, 'w.safetensors')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/kiln: loaded the train step/);
    expect(losses(log)).toEqual(losses(join(dir, 'kiln.jsonl')));
    r = kiln(['eval', bundle, '--weights', join(dir, 'w.safetensors'), '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SimpleCNN with .*w\.safetensors on mnist \(10,000 test images\)\ntest loss 0\.1688, accuracy 95\.29%/);
    r = kiln(['train', bundle, '--lr', '0.1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--lr: fixed when the bundle was compiled/);
  });
});
