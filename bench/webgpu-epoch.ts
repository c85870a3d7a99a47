/**
 * One MNIST epoch of a model (default SimpleCNN, batch 64: 938 steps) on the webgpu backend,
 * timed as the issue sets the target: from the first batch to the last loss read back, data
 * preparation and upload included (every batch is shuffled, normalised on the host and written
 * to the device, as `kiln train` does), pipelines built and warmed up before the clock starts.
 * Prints the adapter, per-step and epoch time, images/s, dispatches per step, and checks them
 * against the targets (H100: epoch <= 1 s, <= 8 dispatches per step) when --targets is given.
 *
 *   bench/webgpu-gpu-check.sh --skip-parity -- [--steps N] [--depth 64]
 *   (or bundle it with esbuild and run: [--model samples/simple-cnn.ts] [--steps N] [--depth 64] [--targets] [--json FILE])
 *
 * --steps times only the first N steps (llvmpipe takes minutes for a whole epoch).
 */
import { writeFileSync } from 'node:fs';
import { graphFor } from '../src/cli/graphs.ts';
import { loadModelFile } from '../src/frontend/loader.ts';
import { memoizeSteps } from '../src/runtime/backend.ts';
import { fillBatch, MNIST_NORMALIZE } from '../src/runtime/data/dataset.ts';
import { loadDataset } from '../src/runtime/data/dataset-file.ts';
import { batchBounds, epochOrder, numBatches } from '../src/runtime/data/shuffle.ts';
import { initDraws, initialState } from '../src/runtime/init.ts';
import { openWebGpuBackend } from '../src/runtime/webgpu/compile.ts';
import { profileDispatches } from '../src/runtime/webgpu/profile.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const say = (s: string) => process.stdout.write(`${s}\n`);

const modelPath = arg('model', 'samples/simple-cnn.ts');
const depth = Number(arg('depth', '64'));
const jsonOut = arg('json', '');
const targets = process.argv.includes('--targets');
const TARGET_EPOCH_S = 1;
const TARGET_DISPATCHES = 8;

const loaded = await loadModelFile(modelPath, { lint: false });
const t = loaded.training;
const batch = t.batchSize;
const seed = 0;
const data = loadDataset('mnist');
const split = data.train;
const batches = numBatches(split.count, batch);
const steps = Math.min(batches, Number(arg('steps', String(batches))));
const source = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: t.optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer: t.optimizer }) });
const initial = initialState(source.train(batch).state, seed);

const c0 = performance.now();
const backend = await openWebGpuBackend(source, initial, batch, seed, { depth });
const pixels = split.images.length / split.count;
const x = new Float32Array(batch * pixels);
const labels = new Float32Array(batch);
const order = epochOrder(split.count, 0, { seed, initDraws: initDraws(source.train(batch).state) });

/** Queues steps [from, to) of the epoch, flushing every `depth`; returns the losses. */
async function run(from: number, to: number): Promise<number[]> {
  const losses: number[] = [];
  for (let b = from; b < to; b++) {
    const { start, size } = batchBounds(b, split.count, batch);
    fillBatch(split, order, start, size, x, labels, MNIST_NORMALIZE);
    backend.queueTrainStep(x.subarray(0, size * pixels), labels.subarray(0, size), b);
    if ((b - from + 1) % depth === 0 || b === to - 1) for (const r of await backend.flush()) losses.push(r.loss);
  }
  return losses;
}

// Warm-up: build and run every program the epoch uses (the full batch and the short last one),
// then put the initial weights back so the timed epoch starts from step 0's state.
await run(0, 2);
if (split.count % batch !== 0) await run(batches - 1, batches);
for (const [name, v] of initial) backend.setState(name, v);
const setupSeconds = (performance.now() - c0) / 1000;

const t0 = performance.now();
const losses = await run(0, steps);
const seconds = (performance.now() - t0) / 1000;

const images = Math.min(steps * batch, split.count);
const result = {
  adapter: backend.description,
  software: backend.software,
  model: loaded.name,
  batchSize: batch,
  steps,
  epochSeconds: seconds,
  stepMs: (1000 * seconds) / steps,
  imagesPerSec: images / seconds,
  dispatchesPerStep: backend.dispatchesPerStep,
  kernelsPerStep: backend.programs[0]!.program.kernels.length,
  depth,
  setupSeconds,
  firstLoss: losses[0]!,
  lastLoss: losses.at(-1)!,
};
say(`adapter            ${result.adapter}${result.software ? '  (software: not a GPU measurement)' : ''}`);
say(`model              ${result.model}, batch ${batch}, ${steps} of ${batches} steps${steps < batches ? ' (partial epoch)' : ''}, ${depth} steps per read-back`);
say(`setup              ${setupSeconds.toFixed(2)} s (device, pipelines, warm-up)`);
say(`per step           ${result.stepMs.toFixed(3)} ms`);
say(`epoch              ${seconds.toFixed(3)} s${steps < batches ? ` for ${steps} steps` : ''}`);
say(`images/s           ${Math.round(result.imagesPerSec).toLocaleString('en-US')}`);
say(`dispatches/step    ${result.dispatchesPerStep} (${result.kernelsPerStep} kernels)`);
say(`loss               ${result.firstLoss.toFixed(4)} -> ${result.lastLoss.toFixed(4)}`);
// GPU time per dispatch (timestamp queries, where the adapter has them): where the step's time goes.
// Untried on a GPU when written: a failure here is reported, not fatal.
const profile = await profileDispatches(backend.device, backend.programs[0]!).catch((e: Error) => {
  say(`GPU time/step      (profiling failed: ${e.message})`);
  return null;
});
if (profile) {
  const gpuUs = profile.reduce((s, d) => s + d.us, 0);
  say(`GPU time/step      ${(gpuUs / 1000).toFixed(3)} ms (sum of dispatches; the rest of a step is host work and waiting)`);
  for (const d of profile) say(`  ${d.label.padEnd(36)} ${d.us.toFixed(1).padStart(9)} µs`);
} else if (profile === undefined) {
  say('GPU time/step      (no timestamp queries on this adapter)');
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ ...result, dispatchMicros: profile ?? null }, null, 2) + '\n');
backend.dispose();

if (!Number.isFinite(result.lastLoss) || !(result.lastLoss < result.firstLoss)) {
  say('FAIL: the loss did not fall');
  process.exitCode = 1;
}
if (targets) {
  const fails: string[] = [];
  if (result.software) fails.push('the adapter is a software rasterizer, not a GPU');
  if (steps < batches) fails.push('a partial epoch was timed');
  if (seconds > TARGET_EPOCH_S) fails.push(`epoch ${seconds.toFixed(3)} s > ${TARGET_EPOCH_S} s`);
  if (result.dispatchesPerStep > TARGET_DISPATCHES) fails.push(`${result.dispatchesPerStep} dispatches per step > ${TARGET_DISPATCHES}`);
  say(fails.length ? `TARGETS NOT MET: ${fails.join('; ')}` : `targets met: epoch <= ${TARGET_EPOCH_S} s, <= ${TARGET_DISPATCHES} dispatches per step`);
  if (fails.length) process.exitCode = 1;
}
