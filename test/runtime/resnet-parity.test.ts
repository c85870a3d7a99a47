import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile, type LoadedModel } from '../../src/frontend/loader.ts';
import { resolveOptimizer, type OptimizerOptions } from '../../src/frontend/training-options.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { memoizeSteps, runTrainStep, type Backend, type StepSource } from '../../src/runtime/backend.ts';
import { initialState } from '../../src/runtime/init.ts';
import { ReferenceBackend } from '../../src/runtime/reference/backend.ts';
import { describeEachBackend } from './parity/backends.ts';

// samples/resnet.ts (ResNet-20) against PyTorch 1.13 step by step: made by
// test/fixtures/pytorch/make_resnet20_fixture.py from torch.manual_seed(0)'s initialisation (kiln's
// seed 0 draws the same weights), noise-like CIFAR-format records in file order, SGD with momentum
// 0.9, Nesterov and weight decay 5e-4. Batch 128 for 50 steps on the wasm backends (the issue's
// run); batch 4 for 6 steps on every backend, the reference and llvmpipe included. Each step's
// loss is held to PyTorch's own distance from itself (offFloor).
interface Run {
  batch: number;
  steps: number;
  lr: number;
  losses: number[];
  losses_channels_last: number[];
  init_sums: Record<string, number>;
}
const FIXTURE = JSON.parse(readFileSync('test/fixtures/pytorch/resnet20-losses.json', 'utf8')) as {
  meta: { optimizer: Omit<OptimizerOptions, 'lr'>; normalize: { mean: number[]; std: number[] } };
  runs: Run[];
};
const [BIG, SMALL] = FIXTURE.runs as [Run, Run];
const PIXELS = 3 * 32 * 32;

/** make_resnet20_fixture.py's mix: murmur3's 32-bit finaliser. */
function mix(i: number): number {
  let h = i >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Record r of the fixture's data (record_bytes): writes its image at `at` and returns its label. */
function record(r: number, x: Float32Array, at: number): number {
  const { mean, std } = FIXTURE.meta.normalize;
  for (let p = 0; p < PIXELS; p++) {
    const byte = mix(r * 3073 + 1 + p) >>> 24;
    const c = Math.floor(p / 1024);
    // torchvision's ToTensor then Normalize, in float32.
    x[at + p] = Math.fround(Math.fround(Math.fround(byte / 255) - Math.fround(mean[c]!)) / Math.fround(std[c]!));
  }
  return (mix(r * 3073) >>> 24) % 10;
}

let model: LoadedModel | undefined;
async function steps(run: Run): Promise<StepSource> {
  model ??= await loadModelFile('samples/resnet.ts', { lint: false });
  const optimizer = resolveOptimizer({ ...FIXTURE.meta.optimizer, lr: run.lr } as OptimizerOptions, (m) => {
    throw new Error(m);
  });
  const loaded = model;
  return memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer }) });
}

async function losses(backend: Backend, run: Run): Promise<number[]> {
  const x = new Float32Array(run.batch * PIXELS);
  const labels = new Float32Array(run.batch);
  const out: number[] = [];
  for (let s = 0; s < run.steps; s++) {
    for (let i = 0; i < run.batch; i++) labels[i] = record(s * run.batch + i, x, i * PIXELS);
    out.push((await runTrainStep(backend, x, labels, s)).loss);
  }
  return out;
}

/**
 * Whether kiln's losses stay as close to PyTorch's as PyTorch's own channels_last run does. A ReLU
 * whose input is within rounding of zero flips between two summation orders, and SGD with batch
 * norm amplifies each flip step after step: PyTorch contiguous against channels_last drifts 1e-4
 * apart by the second step at batch 128 and 3e-2 by the fiftieth (make_resnet20_fixture.py), so
 * no bound tighter than that floor holds for anyone. Each step is held to 1e-5 relative, or to
 * FLOOR_FACTOR times the largest distance between PyTorch's two runs up to that step.
 */
const FLOOR_FACTOR = 3;
function offFloor(ours: number[], run: Run): string[] {
  const bad: string[] = [];
  let floor = 0;
  ours.forEach((l, s) => {
    const theirs = run.losses[s]!;
    floor = Math.max(floor, Math.abs(run.losses_channels_last[s]! - theirs) / Math.abs(theirs));
    const off = Math.abs(l - theirs) / Math.abs(theirs);
    if (off > Math.max(1e-5, FLOOR_FACTOR * floor)) bad.push(`step ${s}: ${l} against PyTorch's ${theirs} (${off.toExponential(2)} relative; PyTorch's own floor so far ${floor.toExponential(2)})`);
  });
  return bad;
}

function report(what: string, ours: number[], run: Run): void {
  const worst = Math.max(...ours.map((l, i) => Math.abs(l - run.losses[i]!) / Math.abs(run.losses[i]!)));
  const floor = Math.max(...run.losses_channels_last.map((l, i) => Math.abs(l - run.losses[i]!) / Math.abs(run.losses[i]!)));
  console.log(`${what}, batch ${run.batch}: worst relative loss difference ${worst.toExponential(2)} (PyTorch channels_last against PyTorch: ${floor.toExponential(2)})`);
}

it('draws PyTorch\'s initial weights for seed 0 (sum of every tensor, by PyTorch\'s names)', async () => {
  const source = await steps(SMALL);
  const init = initialState(source.train(SMALL.batch).state, 0);
  const sums = Object.fromEntries([...init].filter(([n]) => !n.endsWith('num_batches_tracked') && n in SMALL.init_sums).map(([n, v]) => [n, v.reduce((a, b) => a + b, 0)]));
  expect(Object.keys(sums).sort()).toEqual(Object.keys(SMALL.init_sums).sort());
  for (const [n, s] of Object.entries(sums)) expect(s, n).toBeCloseTo(SMALL.init_sums[n]!, 4);
});

it(`reference backend: batch ${SMALL.batch}, ${SMALL.steps} steps as close to PyTorch as PyTorch is to itself`, async () => {
  const source = await steps(SMALL);
  const b = new ReferenceBackend(source, initialState(source.train(SMALL.batch).state, 0), SMALL.batch, 0);
  const ours = await losses(b, SMALL);
  report('reference', ours, SMALL);
  expect(offFloor(ours, SMALL)).toEqual([]);
}, 300_000);

describeEachBackend('ResNet-20 against PyTorch', (backend, skipped) => {
  for (const run of backend.name.startsWith('wasm') ? [SMALL, BIG] : [SMALL]) {
    it(`${backend.name}: batch ${run.batch}, ${run.steps} steps as close to PyTorch as PyTorch is to itself`, async () => {
      if (skipped()) return;
      const source = await steps(run);
      const b = await backend.open(source, initialState(source.train(run.batch).state, 0), run.batch, 0, compileProgram);
      try {
        const ours = await losses(b, run);
        report(backend.name, ours, run);
        expect(offFloor(ours, run)).toEqual([]);
      } finally {
        b.dispose();
      }
    }, 600_000);
  }
});
