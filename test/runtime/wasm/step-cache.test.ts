import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { graphFor } from '../../../src/cli/graphs.ts';
import type { WasmStep } from '../../../src/codegen/artifact.ts';
import { layoutState } from '../../../src/codegen/wasm-simd/layout.ts';
import { WASM_TARGET } from '../../../src/codegen/wasm-simd/target.ts';
import { loadModelFile } from '../../../src/frontend/loader.ts';
import type { Program } from '../../../src/ir/program.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { memoizeSteps } from '../../../src/runtime/backend.ts';
import { initialState } from '../../../src/runtime/init.ts';
import { createWasmBackend } from '../../../src/runtime/wasm/compile.ts';
import { StepCache } from '../../../src/runtime/wasm/step-cache.ts';

// Modules read back from the cache must be exactly the ones a build would give, and anything
// short of a whole, matching entry must be a miss (a rebuild), never a wrong module.

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kiln-step-cache-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Records what each lookup found. */
class CountingCache extends StepCache {
  readonly lookups: boolean[] = [];
  override get(key: string): WasmStep | undefined {
    const s = super.get(key);
    this.lookups.push(s !== undefined);
    return s;
  }
}

async function mlp() {
  const loaded = await loadModelFile('samples/mlp.ts', { lint: false });
  const optimizer = loaded.training.optimizer;
  const steps = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer }) });
  return { steps, initial: initialState(steps.train(16).state, 0) };
}

async function trainTwice(cache: StepCache | undefined): Promise<{ losses: number[]; weights: Float32Array }> {
  const { steps, initial } = await mlp();
  const b = await createWasmBackend(steps, initial, 16, 0, { threads: 1, cache });
  await b.prepare('train', 16);
  await b.prepare('eval', 8);
  const x = Float32Array.from({ length: 16 * 784 }, (_, i) => Math.sin(i));
  const labels = Float32Array.from({ length: 16 }, (_, i) => i % 10);
  const losses = [b.trainStep(x, labels, 0).loss, b.trainStep(x, labels, 1).loss, b.evalStep(x.subarray(0, 8 * 784), labels.subarray(0, 8)).loss];
  const weights = b.getState(steps.train(16).state[0]!.name);
  b.dispose();
  return { losses, weights };
}

describe('wasm step cache', () => {
  it('reads back what it built: the second backend builds nothing and trains bitwise alike', async () => {
    const dir = tempDir();
    const first = new CountingCache(dir);
    const built = await trainTwice(first);
    expect(first.lookups).toEqual([false, false]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wasm'))).toHaveLength(2);
    const second = new CountingCache(dir);
    const read = await trainTwice(second);
    expect(second.lookups).toEqual([true, true]);
    expect(read.losses).toEqual(built.losses);
    expect(read.weights).toEqual(built.weights);
    const uncached = await trainTwice(undefined);
    expect(uncached.losses).toEqual(built.losses);
  });

  it('treats a damaged or half-written entry as a miss', async () => {
    const dir = tempDir();
    await trainTwice(new StepCache(dir));
    const wasm = readdirSync(dir).filter((f) => f.endsWith('.wasm'));
    const damaged = join(dir, wasm[0]!);
    const bytes = readFileSync(damaged);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(damaged, bytes);
    rmSync(join(dir, wasm[1]!.replace(/\.wasm$/, '.json')));
    const again = new CountingCache(dir);
    const run = await trainTwice(again);
    expect(again.lookups).toEqual([false, false]);
    expect(run.losses.every(Number.isFinite)).toBe(true);
    // Rebuilt and stored whole again.
    const third = new CountingCache(dir);
    await trainTwice(third);
    expect(third.lookups).toEqual([true, true]);
  });

  it('keys on everything the bytes depend on', async () => {
    const { steps } = await mlp();
    const program = compileProgram(steps.train(16), WASM_TARGET);
    const layout = layoutState(steps.train(16).state);
    const cache = new StepCache(tempDir());
    const build = { threads: 1, relaxed: true, layout };
    const key = cache.key(program, build);
    expect(cache.key(compileProgram(steps.train(16), WASM_TARGET), build)).toBe(key);
    expect(cache.key(program, { ...build, threads: 2 })).not.toBe(key);
    expect(cache.key(program, { ...build, relaxed: false })).not.toBe(key);
    expect(cache.key(compileProgram(steps.train(8), WASM_TARGET), build)).not.toBe(key);
    // Values JSON would merge: -0 and 0, NaN and Infinity (all null or 0 in plain JSON).
    const withConstant = (value: number): Program => ({ ...program, constants: [{ slice: program.constants[0]?.slice ?? program.inputs.x!, value }] });
    const keys = [0, -0, NaN, Infinity, -Infinity].map((v) => cache.key(withConstant(v), build));
    expect(new Set(keys).size).toBe(5);
  });

  it('keeps at most 200 entries, dropping the least recently used', () => {
    const dir = tempDir();
    const cache = new StepCache(dir);
    const step = { stage: 'eval', batchSize: 1, threads: 1, relaxed: false, binary: new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), memoryBytes: 0, x: { addr: 0, shape: [1] }, labels: { addr: 0, shape: [1] }, loss: { addr: 0, shape: [1] }, logits: { addr: 0, shape: [1] }, constants: [], kernels: [] } satisfies WasmStep;
    for (let i = 0; i < 200; i++) {
      cache.put(`k${i}`, step);
      utimesSync(join(dir, `k${i}.json`), 1000 + i, 1000 + i);
    }
    // Reading an entry makes it recent.
    expect(cache.get('k0')?.binary).toEqual(step.binary);
    cache.put('k200', step);
    const left = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(left.length).toBe(150);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wasm')).length).toBe(150);
    for (const k of ['k0', 'k199', 'k200', 'k52']) expect(cache.get(k)?.binary).toEqual(step.binary);
    for (const k of ['k1', 'k51']) expect(cache.get(k)).toBeUndefined();
  });
});
