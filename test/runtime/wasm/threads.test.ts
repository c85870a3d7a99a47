import { describe, expect, it } from 'vitest';
import { graphFor } from '../../../src/cli/graphs.ts';
import { loadModelFile } from '../../../src/frontend/loader.ts';
import { memoizeSteps, type StepSource } from '../../../src/runtime/backend.ts';
import { initialState } from '../../../src/runtime/init.ts';
import { createWasmBackend, type WasmBackendOptions } from '../../../src/runtime/wasm/compile.ts';

// The worker pool's failure paths: a trap on any thread, or a thread that never reaches a
// barrier, must surface as an error in the caller within a second, and nothing may hang.

async function sample(name = 'simple-cnn', batch = 8): Promise<{ steps: StepSource; initial: Map<string, Float32Array> }> {
  const loaded = await loadModelFile(`samples/${name}.ts`, { lint: false });
  const optimizer = loaded.training.optimizer;
  const steps = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer }) });
  return { steps, initial: initialState(steps.train(batch).state, 0) };
}

async function stepWith(opts: WasmBackendOptions): Promise<{ error: Error; ms: number; again: Error }> {
  const { steps, initial } = await sample();
  const b = await createWasmBackend(steps, initial, 8, 0, opts);
  b.compiled('train', 8);
  const x = new Float32Array(8 * 784);
  const labels = new Float32Array(8);
  const t0 = performance.now();
  let error: Error | undefined;
  try {
    b.trainStep(x, labels, 0);
  } catch (e) {
    error = e as Error;
  }
  const ms = performance.now() - t0;
  let again: Error | undefined;
  try {
    b.trainStep(x, labels, 1);
  } catch (e) {
    again = e as Error;
  }
  b.dispose();
  if (!error || !again) throw new Error('expected the step to fail');
  return { error, ms, again };
}

describe('wasm worker pool', () => {
  it('runs steps on 2 threads with the same result as 1', async () => {
    const { steps, initial } = await sample();
    const one = await createWasmBackend(steps, initial, 8, 0, { threads: 1 });
    const two = await createWasmBackend(steps, initial, 8, 0, { threads: 2 });
    const x = Float32Array.from({ length: 8 * 784 }, (_, i) => Math.sin(i));
    const labels = Float32Array.from({ length: 8 }, (_, i) => i % 10);
    for (let s = 0; s < 3; s++) expect(two.trainStep(x, labels, s).loss).toBeCloseTo(one.trainStep(x, labels, s).loss, 6);
    one.dispose();
    two.dispose();
  });

  it('runs LeNet on 2 threads with bitwise the result of 1, run after run', async () => {
    // Threads share work out as it comes (sharedLoop), so which thread sums what varies from run
    // to run: every split must still add in a fixed order, or seeds would not reproduce.
    const { steps, initial } = await sample('lenet', 32);
    const x = Float32Array.from({ length: 32 * 784 }, (_, i) => Math.sin(i));
    const labels = Float32Array.from({ length: 32 }, (_, i) => i % 10);
    const run = async (threads: number) => {
      const b = await createWasmBackend(steps, initial, 32, 0, { threads });
      const losses = [0, 1, 2].map((s) => b.trainStep(x, labels, s).loss);
      const state = [...b.stateShapes.keys()].map((n) => Array.from(b.getState(n)));
      b.dispose();
      return { losses, state };
    };
    const one = await run(1);
    for (let r = 0; r < 3; r++) expect(await run(2)).toEqual(one);
  });

  it('runs the GPT on 2 threads with bitwise the result of 1 (attention, layer norm and its weight gradients)', async () => {
    const { steps, initial } = await sample('gpt', 2);
    const x = Float32Array.from({ length: 2 * 128 }, (_, i) => (i * 37) % 256);
    const labels = Float32Array.from({ length: 2 * 128 }, (_, i) => (i * 11 + 3) % 256);
    const run = async (threads: number) => {
      const b = await createWasmBackend(steps, initial, 2, 0, { threads });
      const losses = [0, 1].map((s) => b.trainStep(x, labels, s, { lr: 1e-3 }).loss);
      const state = [...b.stateShapes.keys()].map((n) => Array.from(b.getState(n)));
      b.dispose();
      return { losses, state };
    };
    expect(await run(2)).toEqual(await run(1));
  });

  it('a trap in a worker surfaces as an error within a second', async () => {
    const { error, ms, again } = await stepWith({ threads: 2, fault: { trap: 1 } });
    expect(error.message).toMatch(/worker 1 trapped: .*unreachable/);
    expect(ms).toBeLessThan(1000);
    expect(again.message).toMatch(/stopped after an earlier failure/);
  });

  it('a trap on the main thread releases the workers and surfaces', async () => {
    const { error, ms } = await stepWith({ threads: 2, fault: { trap: 0 } });
    expect(error.message).toMatch(/step trapped: .*unreachable/);
    expect(ms).toBeLessThan(1000);
  });

  it('a thread that never reaches its barrier times out instead of hanging', async () => {
    const { error, ms } = await stepWith({ threads: 2, fault: { hang: 1 }, barrierTimeoutMs: 300 });
    expect(error.message).toMatch(/did not reach a barrier within 300 ms/);
    expect(ms).toBeLessThan(1000);
  });
});

describe('wasm memory limits', () => {
  it('a step that needs more than 4 GiB is a clear error naming the batch, not a grow() failure', async () => {
    const { steps, initial } = await sample();
    const b = await createWasmBackend(steps, initial, 8, 0, { threads: 1 });
    expect(() => b.compiled('train', 180_000)).toThrow(/^the train step at batch 180000 needs (?:[4-9]|\d\d)\.\d\d GiB of wasm memory; WebAssembly memory is at most 4 GiB$/);
    b.dispose();
  });
});
