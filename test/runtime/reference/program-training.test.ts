import { describe, expect, it } from 'vitest';
import { graphFor } from '../../../src/cli/graphs.ts';
import { loadModelFile } from '../../../src/frontend/loader.ts';
import type { Graph } from '../../../src/ir/graph.ts';
import type { Target } from '../../../src/ir/target.ts';
import { verifyProgram } from '../../../src/ir/verify-program.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { memoizeSteps } from '../../../src/runtime/backend.ts';
import { fillBatch } from '../../../src/runtime/data/dataset.ts';
import { loadDataset } from '../../../src/runtime/data/dataset-file.ts';
import { epochOrder } from '../../../src/runtime/data/shuffle.ts';
import { initDraws, initialState } from '../../../src/runtime/init.ts';
import { ReferenceBackend, type ReferenceOptions } from '../../../src/runtime/reference/backend.ts';

async function losses(sample: string, steps: number, opts: ReferenceOptions): Promise<{ train: number[]; eval: number[]; weights: Float32Array[] }> {
  const loaded = await loadModelFile(`samples/${sample}.ts`, { lint: false });
  const optimizer = loaded.training.optimizer;
  const source = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer }) });
  const state = (source.train(64) as Graph).state;
  const backend = new ReferenceBackend(source, initialState(state, 5), 64, 5, opts);
  const data = loadDataset('mnist');
  const order = epochOrder(data.train.count, 0, { seed: 5, initDraws: initDraws(state) });
  const x = new Float32Array(64 * 784);
  const labels = new Float32Array(64);
  const train: number[] = [];
  for (let step = 0; step < steps; step++) {
    fillBatch(data.train, order, step * 64, 64, x, labels);
    train.push(backend.trainStep(x, labels, step).loss);
  }
  // A short last batch compiles a second Program; eval runs its own.
  fillBatch(data.train, order, steps * 64, 20, x, labels);
  train.push(backend.trainStep(x.subarray(0, 20 * 784), labels.subarray(0, 20), steps).loss);
  const evalLosses = [0, 1].map((i) => {
    fillBatch(data.test, epochOrder(data.test.count, 0), i * 64, 64, x, labels);
    return backend.evalStep(x, labels).loss;
  });
  return { train, eval: evalLosses, weights: state.map((s) => backend.getState(s.name)) };
}

describe('training from the planned Program on the reference backend', () => {
  // The Program's kernels compute every value exactly as the graph's nodes do (the same op
  // kernels, rounded to f32 at the same points), so the comparison is exact, not approximate.
  it.each([
    ['simple-cnn', 8],
    ['mlp', 8],
    ['lenet', 4],
  ] as const)('%s: the same losses and weights as the unfused graph, step for step', async (sample, steps) => {
    const graph = await losses(sample, steps, {});
    // Every Program the backend builds (train and eval, full and short batch) is verified first.
    const verified = (g: Graph, target: Target) => {
      const p = compileProgram(g, target);
      expect(verifyProgram(p, target)).toEqual([]);
      return p;
    };
    const planned = await losses(sample, steps, { lower: verified });
    expect(planned.train).toEqual(graph.train);
    expect(planned.eval).toEqual(graph.eval);
    expect(planned.weights).toEqual(graph.weights);
    expect(graph.train[steps - 1]).toBeLessThan(graph.train[0]!);
  });
});
