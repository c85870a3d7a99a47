import { expect, it } from 'vitest';
import { compileProgram } from '../../../src/passes/compile.ts';
import { lowerNaive } from '../../passes/lower-naive.ts';
import type { Program } from '../../../src/ir/program.ts';
import { memoizeSteps, runEvalStep, runTrainStep, syncState, type Backend, type StepResult } from '../../../src/runtime/backend.ts';
import type { Graph } from '../../../src/ir/graph.ts';
import type { Target } from '../../../src/ir/target.ts';
import { initialState } from '../../../src/runtime/init.ts';
import { executeGraph } from '../../../src/runtime/reference/execute.ts';
import { ReferenceBackend } from '../../../src/runtime/reference/backend.ts';
import { MODELS, sampleGraph, sampleModel } from '../../passes/helpers.ts';
import { scheduleScalars } from '../../../src/runtime/schedule.ts';
import type { StepScalars } from '../../../src/runtime/backend.ts';
import { rng } from '../reference/helpers.ts';
import { describeEachBackend, parityError, peak } from './backends.ts';

// Every sample's training step on the backend, compiled by the full pipeline (fused, planned) and
// lowered one op per kernel (the plain kernels at the samples' shapes), against the reference backend running the graph: from the same state and batch, the loss, the
// logits and every persistent tensor after the step (parameters, buffers, optimizer state),
// within 1e-4 beyond ten times the oracle's own spread under rounding (parityError, JITTER). The
// schedule mixes batch sizes and evaluation, so persistent tensors must travel between programs
// (train 4 → eval 6 → train 3, a short last batch → train 4).

const SEED = 2;
const LOWERINGS: [string, (g: Graph, target: Target) => Program][] = [
  ['planned', compileProgram],
  ['one op per kernel', lowerNaive],
];
/**
 * The oracle's sensitivity to rounding, measured: it runs each step again with every image value
 * scaled by 1 ± JITTER, a relative perturbation of the size of an f32 backend's own errors
 * (llvmpipe's exp is off by up to 10 ulps, ~6e-7). Where that moves a value, the value is
 * ill-conditioned and a backend may differ by as much (times SPREAD_FACTOR): a gradient that
 * cancels over the batch, and every weight Adam moves by lr·g/(|g| + eps) from it.
 */
const JITTER = 1e-6;
/**
 * A step sums each gradient over the batch and every spatial position (3,136 terms per channel
 * for LeNet's first batch norm at batch 4); moments and weights inherit that sum's f32 rounding,
 * about √n·2^-24 of the summed terms, which a channel whose terms cancel can make a visible share
 * of its own value (2e-6 of the tensor's peak at 1% of the peak, seen). So elements under 10% of
 * the peak are judged absolutely, at 1e-5 of it: a wrong index, term or scale is off by far more.
 */
const PEAK_SHARE = 0.1;
const PIXELS = 784;
const SCHEDULE: ({ kind: 'train'; batch: number; step: number } | { kind: 'eval'; batch: number })[] = [
  { kind: 'train', batch: 4, step: 0 },
  { kind: 'train', batch: 4, step: 1 },
  { kind: 'eval', batch: 6 },
  { kind: 'train', batch: 3, step: 2 },
  { kind: 'train', batch: 4, step: 3 },
  { kind: 'eval', batch: 6 },
];

function batch(r: ReturnType<typeof rng>, n: number) {
  return { x: Float32Array.from(r.uniform(n * PIXELS, -0.5, 2.5)), labels: Float32Array.from({ length: n }, () => r.int(0, 9)) };
}

/**
 * One step of the schedule from `state` (written first, when given); the result and every
 * persistent tensor after it. `jitter` scales each image value by 1 ± jitter (random sign).
 */
async function step(b: Backend, i: number, scalars: StepScalars | undefined, state?: ReadonlyMap<string, Float32Array>, jitter = 0): Promise<{ result: StepResult; state: Map<string, Float32Array> }> {
  if (state) for (const [n, v] of state) b.setState(n, v);
  const s = SCHEDULE[i]!;
  const { x, labels } = batch(rng(100 + i), s.batch);
  if (jitter) {
    const r = rng(7 + i);
    for (let k = 0; k < x.length; k++) x[k] = x[k]! * (1 + (r.next() < 0.5 ? -jitter : jitter));
  }
  const result = s.kind === 'train' ? await runTrainStep(b, x, labels, s.step, scalars) : await runEvalStep(b, x, labels);
  await syncState(b);
  return { result, state: new Map([...b.stateShapes.keys()].map((n) => [n, b.getState(n)])) };
}

/** The step computed entirely in f64 by the reference executor: with the f32 oracle, the rounding spread of every value. */
function oracle64(g: Graph, i: number, state: ReadonlyMap<string, Float32Array>, scalars: StepScalars | undefined) {
  const s = SCHEDULE[i]!;
  const { x, labels } = batch(rng(100 + i), s.batch);
  const feeds: Record<string, ArrayLike<number>> = { x, labels, ...(s.kind === 'train' ? { step: [s.step], ...Object.fromEntries(Object.entries(scalars ?? {}).map(([n, v]) => [n, [v]])) } : {}) };
  const v = executeGraph(g, feeds, state, { dtype: 'f64', seed: SEED });
  const grads = new Map(Object.entries(g.grads).map(([n, id]) => [n, peak(v[id]!)]));
  return { loss: v[g.outputs.loss!]![0]!, logits: v[g.outputs.logits!]!, state: new Map(Object.entries(g.updates).map(([n, id]) => [n, v[id]!])), grads };
}

/**
 * Parameters whose gradient is zero but for rounding (in f64, below 1e-10 of the largest): a bias
 * feeding a batch norm, which subtracts it again. Adam moves such a weight by lr·g/(|g| + eps)
 * of pure rounding noise, an amount on which no two backends agree (the oracle in f32 and in f64
 * do not), so the weight and its moments are left out of the comparison.
 */
function zeroGradient(grads: ReadonlyMap<string, number>): Set<string> {
  const top = Math.max(...grads.values());
  return new Set([...grads].filter(([, m]) => m <= 1e-10 * top).map(([n]) => n));
}

describeEachBackend('training-step parity on the samples', (backend, skipped) => {
  it.each(MODELS.flatMap((s) => LOWERINGS.map(([how, lower]) => [s, how, lower] as const)))(`${backend.name}: %s, %s`, async (name, _how, lower) => {
    if (skipped()) return;
    const graphs = new Map<string, Awaited<ReturnType<typeof sampleGraph>>>();
    const graph = async (stage: 'train' | 'eval', b: number) => {
      const key = `${stage}/${b}`;
      if (!graphs.has(key)) graphs.set(key, await sampleGraph(name, stage, b));
      return graphs.get(key)!;
    };
    for (const s of SCHEDULE) await graph(s.kind, s.batch);
    const steps = memoizeSteps({ train: (b) => graphs.get(`train/${b}`)!, eval: (b) => graphs.get(`eval/${b}`)! });
    // A schedule (resnet-tiny's one-cycle) over a run as long as the schedule of steps here.
    const schedule = scheduleScalars((await sampleModel(name)).training.optimizer, SCHEDULE.length);
    const init = initialState(steps.train(4).state, SEED);
    const ref = new ReferenceBackend(steps, init, 4, SEED);
    const dut = await backend.open(steps, init, 4, SEED, lower);
    const failures: string[] = [];
    const check = (what: string, g: ArrayLike<number>, w: ArrayLike<number>, w64: ArrayLike<number>, wj: ArrayLike<number>) => {
      const spread = Float64Array.from(w, (v, k) => Math.max(Math.abs(v - w64[k]!), Math.abs(v - wj[k]!)));
      const { error, at } = parityError(g, w, { spread, peakShare: PEAK_SHARE });
      if (!(error <= 1e-4)) failures.push(`${what}: error ${error.toExponential(2)} at ${at}: ${g[at]} vs ${w[at]}`);
    };
    // Each step starts both backends from the oracle's state: a step is compared, not a
    // trajectory (Adam moves every weight by ~lr whatever its gradient's size, so rounding
    // differences in tiny gradients would compound over steps on any two backends).
    let state: Map<string, Float32Array> | undefined;
    const leftOut = new Set<string>();
    for (const [i, s] of SCHEDULE.entries()) {
      const before = state ?? init;
      const scalars = s.kind === 'train' ? schedule?.(s.step) : undefined;
      const want = await step(ref, i, scalars, state);
      const want64 = oracle64(steps[s.kind](s.batch), i, before, scalars);
      const jittered = await step(ref, i, scalars, state ?? init, JITTER);
      const got = await step(dut, i, scalars, state);
      check(`step ${i} (${s.kind}) loss`, [got.result.loss], [want.result.loss], [want64.loss], [jittered.result.loss]);
      check(`step ${i} (${s.kind}) logits`, got.result.logits, want.result.logits, want64.logits, jittered.result.logits);
      const skip = zeroGradient(want64.grads);
      if (skip.size) leftOut.add([...skip].join(', '));
      for (const [n, w] of want.state) {
        expect(got.state.get(n)!.length).toBe(w.length);
        if (skip.has(n) || skip.has(n.slice(0, n.lastIndexOf('.')))) continue;
        check(`step ${i} (${s.kind}) state ${n}`, got.state.get(n)!, w, want64.state.get(n) ?? before.get(n)!, jittered.state.get(n)!);
      }
      state = want.state;
    }
    dut.dispose();
    if (leftOut.size) console.info(`${name}: zero-gradient parameters left out: ${[...leftOut].join('; ')}`);
    expect(failures).toEqual([]);
  });
});
