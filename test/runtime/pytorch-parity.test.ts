import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { resolveOptimizer, type OptimizerOptions, type ScheduleOptions } from '../../src/frontend/training-options.ts';
import { memoizeSteps } from '../../src/runtime/backend.ts';
import { loadWeights } from '../../src/runtime/checkpoint-file.ts';
import { fillBatch } from '../../src/runtime/data/dataset.ts';
import { loadDataset } from '../../src/runtime/data/dataset-file.ts';
import { epochOrder } from '../../src/runtime/data/shuffle.ts';
import { ReferenceBackend } from '../../src/runtime/reference/backend.ts';
import { initDraws, initialState } from '../../src/runtime/init.ts';
import { scheduleScalars } from '../../src/runtime/schedule.ts';

// Made by test/fixtures/pytorch/make_simple_cnn_fixture.py with PyTorch 1.13: the textbook
// SimpleCNN from PyTorch's own initialisation, trained without shuffling, and the textbook listing
// itself after torch.manual_seed(0).
const FIXTURE = 'test/fixtures/pytorch';
const expected = JSON.parse(readFileSync(`${FIXTURE}/simple-cnn-losses.json`, 'utf8')) as { losses: Record<string, number[]>; meta: Record<string, OptimizerOptions> };

/**
 * kiln's losses from PyTorch's initial weights in file order, or (`seed`) from its own seeded init
 * and shuffle; with `schedule`, stepped per batch over a run of `steps` steps.
 */
async function kilnLosses(opt: OptimizerOptions, steps: number, seed?: number, schedule?: ScheduleOptions): Promise<number[]> {
  const loaded = await loadModelFile('samples/simple-cnn.ts', { lint: false });
  const optimizer = resolveOptimizer(opt, (m) => { throw new Error(m); }, schedule);
  const scalars = scheduleScalars(optimizer, steps);
  const source = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer }) });
  const state = source.train(64).state;
  const backend = new ReferenceBackend(source, initialState(state, seed ?? 0), 64, seed ?? 0);
  if (seed === undefined) loadWeights(`${FIXTURE}/simple-cnn-init.safetensors`, backend, state.filter((s) => s.kind !== 'optim').map((s) => s.name));
  const data = loadDataset('mnist');
  const order = epochOrder(data.train.count, 0, seed === undefined ? undefined : { seed, initDraws: initDraws(state) });
  const x = new Float32Array(64 * 784);
  const labels = new Float32Array(64);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    fillBatch(data.train, order, step * 64, 64, x, labels);
    losses.push(backend.trainStep(x, labels, step, scalars?.(step)).loss);
  }
  return losses;
}

function worstRelative(ours: number[], theirs: number[]): number {
  return Math.max(...ours.map((l, i) => Math.abs(l - theirs[i]!) / Math.abs(theirs[i]!)));
}

describe('SimpleCNN losses match PyTorch 1.13 step by step (same init, no shuffle)', () => {
  // f32 arithmetic in a different order than PyTorch's (im2col + BLAS) drifts by ~1e-6 per step;
  // the bound the issue sets is 1e-4 relative.
  it.each([
    ['adam', 100],
    ['sgd', 30],
  ] as const)('%s, %i steps', async (name, steps) => {
    const opt = { ...expected.meta[name], type: name } as OptimizerOptions;
    const ours = await kilnLosses(opt, steps);
    const worst = worstRelative(ours, expected.losses[name]!.slice(0, steps));
    console.log(`${name}: worst relative loss difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('scheduled SimpleCNN losses match PyTorch 1.13 with the scheduler stepped per batch', () => {
  // make_schedule_losses_fixture.py: OneCycleLR (momentum cycled) on Nesterov SGD, and
  // CosineAnnealingLR on Adam, from the same initial weights; bound and drift as above.
  const scheduled = JSON.parse(readFileSync(`${FIXTURE}/simple-cnn-schedule-losses.json`, 'utf8')) as {
    meta: Record<string, { optimizer: OptimizerOptions; schedule: ScheduleOptions }> & { steps: number };
    losses: Record<string, number[]>;
  };
  it.each(['sgd-onecycle', 'adam-cosine'])('%s', async (name) => {
    const { optimizer, schedule } = scheduled.meta[name]!;
    const ours = await kilnLosses(optimizer, scheduled.meta.steps, undefined, schedule);
    const worst = worstRelative(ours, scheduled.losses[name]!);
    console.log(`${name}: worst relative loss difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('kiln train --seed 0 is the textbook listing after torch.manual_seed(0)', () => {
  // Nothing loaded from PyTorch: the same seed gives the same initial weights and the same
  // shuffled batches (torch-generator.ts), so the losses agree as closely as above.
  it('adam, 100 steps, shuffled', async () => {
    const worst = worstRelative(await kilnLosses({ type: 'adam', lr: 0.001 }, 100, 0), expected.losses['textbook-seed0']!);
    console.log(`textbook seed 0: worst relative loss difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });
});
