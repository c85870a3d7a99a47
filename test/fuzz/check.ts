import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { graphFor } from '../../src/cli/graphs.ts';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { loadModelFile, type LoadedModel } from '../../src/frontend/loader.ts';
import type { ResolvedOptimizer } from '../../src/frontend/training-options.ts';
import type { Graph } from '../../src/ir/graph.ts';
import type { Program } from '../../src/ir/program.ts';
import type { Target } from '../../src/ir/target.ts';
import { verifyProgram } from '../../src/ir/verify-program.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { memoizeSteps, runEvalStep, runTrainStep, syncState, type Backend, type StepResult, type StepScalars, type StepSource } from '../../src/runtime/backend.ts';
import { scheduleScalars } from '../../src/runtime/schedule.ts';
import { initialState } from '../../src/runtime/init.ts';
import { ReferenceBackend } from '../../src/runtime/reference/backend.ts';
import { executeGraph } from '../../src/runtime/reference/execute.ts';
import { REFERENCE_TARGET } from '../../src/runtime/reference/target.ts';
import type { Gpu } from '../../src/runtime/webgpu/device.ts';
import { parityError, peak } from '../runtime/parity/tolerance.ts';
import { rng } from '../runtime/reference/helpers.ts';
import { generateModel } from './generate.ts';

// One fuzz case: a model file loaded through kiln's frontend (lint, esbuild bundle, trace: what
// `kiln train` does), its training and evaluation Programs compiled for every backend's target and
// verified (src/ir/verify-program.ts: slices in the arena, no two live values overlapping, every
// kernel reading the value it names; and the arena between its lower bound and the naive size),
// then a schedule of training and evaluation steps run on each backend against the oracle: the
// reference backend running the graph node by node.
//
// The comparison is test/runtime/parity/steps.test.ts's: each step starts every backend from the
// oracle's state (a step is compared, not a trajectory: Adam moves each weight by ~lr whatever
// its gradient's size, so rounding in a tiny gradient compounds over steps on any two backends);
// the loss, the logits and every persistent tensor after the step must be within TOLERANCE of the
// oracle beyond ten times the oracle's own spread under rounding (the step again in f64, and with
// its images jittered by JITTER), elements under PEAK_SHARE of a tensor's peak judged against
// that share of it.

/** The bound on parityError: f32 backends that sum in other orders agree to ~1e-6 here. */
export const TOLERANCE = 1e-4;
/** Images scaled by 1 ± JITTER: a perturbation of the size of an f32 backend's own errors (steps.test.ts). */
const JITTER = 1e-6;
/** As steps.test.ts: elements under 10% of the peak are judged absolutely, at TOLERANCE of 10% of it. */
const PEAK_SHARE = 0.1;

/** The steps every case runs: two training steps, evaluation, a short last batch, evaluation again. */
export const SCHEDULE: readonly ({ kind: 'train'; batch: number; step: number } | { kind: 'eval'; batch: number })[] = [
  { kind: 'train', batch: 4, step: 0 },
  { kind: 'train', batch: 4, step: 1 },
  { kind: 'eval', batch: 3 },
  { kind: 'train', batch: 3, step: 2 },
  { kind: 'eval', batch: 4 },
];

export type Lower = (g: Graph, target: Target) => Program;

/** A backend under the fuzzer: opened per case over the case's steps, closed once per run. */
export interface FuzzBackend {
  readonly name: string;
  target(): Target;
  open(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, lower: Lower): Promise<Backend>;
  close(): Promise<void>;
}

export const BACKEND_NAMES = ['reference', 'wasm', 'wasm-plain', 'webgpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * The backends named, and why any of them cannot run here (WebGPU without an adapter; with
 * KILN_REQUIRE_WEBGPU set, as CI does, that is an error instead).
 * - reference: the planned, fused Program on the reference kernels (the graph is the oracle);
 * - wasm: SIMD with relaxed SIMD where the runtime has it, on two threads (the kernels' splits);
 * - wasm-plain: the plain SIMD128 build browsers without relaxed SIMD get;
 * - webgpu: WGSL through Dawn.
 */
export async function openBackends(names: readonly BackendName[]): Promise<{ backends: FuzzBackend[]; skipped: string[] }> {
  const backends: FuzzBackend[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    if (name === 'reference') {
      backends.push({ name, target: () => REFERENCE_TARGET, open: async (steps, init, b, seed, lower) => new ReferenceBackend(steps, init, b, seed, { lower }), close: async () => {} });
    } else if (name === 'wasm' || name === 'wasm-plain') {
      const { createWasmBackend } = await import('../../src/runtime/wasm/compile.ts');
      const relaxed = name === 'wasm' ? 'auto' : false;
      backends.push({ name, target: () => WASM_TARGET, open: (steps, init, b, seed, lower) => createWasmBackend(steps, init, b, seed, { threads: 2, relaxed, lower }), close: async () => {} });
    } else {
      const { openGpu } = await import('../../src/runtime/webgpu/device.ts');
      const { WebGpuBackend } = await import('../../src/runtime/webgpu/backend.ts');
      const { compilingWgslLoader, deviceTarget } = await import('../../src/runtime/webgpu/compile.ts');
      let gpu: Gpu;
      try {
        gpu = await openGpu();
      } catch (e) {
        // CI installs what Dawn needs (.ci/run): there, no adapter is a failure, not a skip.
        if (process.env.KILN_REQUIRE_WEBGPU) throw e;
        skipped.push(`webgpu: ${(e as Error).message}`);
        continue;
      }
      backends.push({
        name,
        target: () => deviceTarget(gpu),
        async open(steps, init, b, seed, lower) {
          const backend = new WebGpuBackend(gpu, compilingWgslLoader(steps, seed, deviceTarget(gpu), lower), init, b, { sharedDevice: true });
          await backend.flush();
          return backend;
        },
        close: async () => gpu.device.destroy(),
      });
    }
  }
  return { backends, skipped };
}

/** What went wrong in a case: a value off the oracle, an unsound plan, or an error. */
export interface Mismatch {
  readonly backend: string;
  /** Index into SCHEDULE, when a step's value is off. */
  readonly step?: number;
  /** 'loss', 'logits', 'state conv1.weight', 'plan train/4', 'error', ... */
  readonly what: string;
  readonly message: string;
}

export interface CaseResult {
  readonly ok: boolean;
  readonly mismatches: readonly Mismatch[];
  /** Backend name -> milliseconds spent on it (compilation included). */
  readonly ms: Readonly<Record<string, number>>;
  /** Persistent tensors left out of the comparison: a gradient that is zero but for rounding. */
  readonly leftOut: readonly string[];
}

export interface CheckOptions {
  readonly backends: readonly FuzzBackend[];
  /** Graph → Program for every backend (default compileProgram): the tests inject faults here. */
  readonly lower?: Lower;
}

/** One step of the schedule's data: images in [-1, 2), labels in range, from the case's seed. */
function batch(seed: number, i: number, n: number, input: readonly number[], classes: number) {
  const r = rng(seed * 7919 + 100 + i);
  const size = input.reduce((a, b) => a * b, 1);
  return { x: Float32Array.from(r.uniform(n * size, -1, 2)), labels: Float32Array.from({ length: n }, () => r.int(0, classes - 1)) };
}

interface Ran {
  result: StepResult;
  state: Map<string, Float32Array>;
}

/**
 * A case's learning-rate schedule over a run as long as SCHEDULE's training steps: the scalars of
 * each of its steps (undefined for an evaluation, or without a schedule).
 */
function caseScalars(opt: ResolvedOptimizer): (i: number) => StepScalars | undefined {
  const at = scheduleScalars(opt, SCHEDULE.filter((s) => s.kind === 'train').length);
  return (i) => {
    const s = SCHEDULE[i]!;
    return s.kind === 'train' ? at?.(s.step) : undefined;
  };
}

/** Runs step `i` of the schedule from `state`; `jitter` scales each image value by 1 ± jitter. */
async function runStep(b: Backend, i: number, scalars: StepScalars | undefined, data: ReturnType<typeof batch>, state: ReadonlyMap<string, Float32Array>, jitter = 0): Promise<Ran> {
  for (const [n, v] of state) b.setState(n, v);
  const s = SCHEDULE[i]!;
  const x = Float32Array.from(data.x);
  if (jitter) {
    const r = rng(7 + i);
    for (let k = 0; k < x.length; k++) x[k] = x[k]! * (1 + (r.next() < 0.5 ? -jitter : jitter));
  }
  const result = s.kind === 'train' ? await runTrainStep(b, x, data.labels, s.step, scalars) : await runEvalStep(b, x, data.labels);
  await syncState(b);
  return { result, state: new Map([...b.stateShapes.keys()].map((n) => [n, b.getState(n)])) };
}

/** What the oracle says of each step: the f32 result, the f64 one and the jittered one. */
interface Expected {
  before: ReadonlyMap<string, Float32Array>;
  want: Ran;
  jittered: Ran;
  loss64: number;
  logits64: ArrayLike<number>;
  state64: Map<string, ArrayLike<number>>;
  /** Parameters (and their optimizer state) whose gradient is zero but for rounding. */
  skip: Set<string>;
}

async function oracle(steps: StepSource, init: Map<string, Float32Array>, seed: number, input: readonly number[], classes: number, scalars: (i: number) => StepScalars | undefined): Promise<Expected[]> {
  const ref = new ReferenceBackend(steps, init, SCHEDULE[0]!.batch, seed);
  const out: Expected[] = [];
  let before: ReadonlyMap<string, Float32Array> = init;
  for (const [i, s] of SCHEDULE.entries()) {
    const data = batch(seed, i, s.batch, input, classes);
    const want = await runStep(ref, i, scalars(i), data, before);
    const jittered = await runStep(ref, i, scalars(i), data, before, JITTER);
    const g = steps[s.kind](s.batch);
    const scalarFeeds = Object.fromEntries(Object.entries(scalars(i) ?? {}).map(([n, v]) => [n, [v]]));
    const v = executeGraph(g, { x: data.x, labels: data.labels, ...(s.kind === 'train' ? { step: [s.step], ...scalarFeeds } : {}) }, before, { dtype: 'f64', seed });
    const grads = new Map(Object.entries(g.grads).map(([n, id]) => [n, peak(v[id]!)]));
    const top = Math.max(0, ...grads.values());
    // A bias feeding a batch norm has a gradient that is zero but for rounding: Adam moves it by
    // lr·g/(|g| + eps) of pure noise, on which no two backends agree (steps.test.ts: zeroGradient).
    const skip = new Set([...grads].filter(([, m]) => m <= 1e-10 * top).map(([n]) => n));
    const state64 = new Map<string, ArrayLike<number>>(Object.entries(g.updates).map(([n, id]) => [n, v[id]!]));
    out.push({ before, want, jittered, loss64: v[g.outputs.loss!]![0]!, logits64: v[g.outputs.logits!]!, state64, skip });
    before = want.state;
  }
  ref.dispose();
  return out;
}

/** The programs a backend is given, each verified as it is made; problems go to `report`. */
function verifying(lower: Lower, report: (what: string, message: string) => void): Lower {
  return (g, target) => {
    const p = lower(g, target);
    const where = `plan ${g.stage}/${g.batchSize}`;
    const problems = verifyProgram(p, target);
    const m = p.memory;
    if (!(m.lowerBoundBytes <= m.arenaBytes)) problems.push(`arena ${m.arenaBytes} bytes is below its lower bound ${m.lowerBoundBytes}`);
    if (!(m.arenaBytes <= m.naiveBytes)) problems.push(`arena ${m.arenaBytes} bytes is above the naive ${m.naiveBytes}`);
    if (problems.length) report(where, problems.slice(0, 5).join('; '));
    return p;
  };
}

/** Loads `file` as `kiln train` does (lint included) and checks it on every backend. */
export async function checkModelFile(file: string, opts: CheckOptions): Promise<CaseResult> {
  let loaded: LoadedModel;
  try {
    loaded = await loadModelFile(file);
  } catch (e) {
    return { ok: false, mismatches: [{ backend: 'frontend', what: 'error', message: describeError(e) }], ms: {}, leftOut: [] };
  }
  return checkLoaded(loaded, opts);
}

function describeError(e: unknown): string {
  const err = e as Error & { loc?: { file: string; line: number; col: number }; hint?: string };
  const at = err.loc ? `${err.loc.file}:${err.loc.line}:${err.loc.col}: ` : '';
  return `${at}${err.message ?? String(e)}${err.hint ? ` (hint: ${err.hint})` : ''}`;
}

async function checkLoaded(loaded: LoadedModel, opts: CheckOptions): Promise<CaseResult> {
  const training = loaded.training;
  const seed = training.seed;
  const mismatches: Mismatch[] = [];
  const ms: Record<string, number> = {};
  const scalars = caseScalars(training.optimizer);
  let steps: StepSource;
  let expected: Expected[];
  let init: Map<string, Float32Array>;
  try {
    steps = memoizeSteps({
      train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: training.optimizer }),
      eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer: training.optimizer }),
    });
    const first = steps.train(SCHEDULE[0]!.batch);
    const classes = first.nodes[first.outputs.logits!]!.shape[1]!;
    init = initialState(first.state, seed);
    const t = performance.now();
    expected = await oracle(steps, init, seed, training.input, classes, scalars);
    ms.oracle = performance.now() - t;
  } catch (e) {
    return { ok: false, mismatches: [{ backend: 'oracle', what: 'error', message: describeError(e) }], ms, leftOut: [] };
  }
  const classes = expected[0]!.want.result.logits.length / SCHEDULE[0]!.batch;
  for (const fb of opts.backends) {
    const t = performance.now();
    const report = (what: string, message: string, step?: number) => mismatches.push({ backend: fb.name, what, message, step });
    let dut: Backend | undefined;
    try {
      dut = await fb.open(steps, init, SCHEDULE[0]!.batch, seed, verifying(opts.lower ?? compileProgram, report));
      for (const [i, s] of SCHEDULE.entries()) {
        const e = expected[i]!;
        dut.prepare(s.kind, s.batch);
        const got = await runStep(dut, i, scalars(i), batch(seed, i, s.batch, training.input, classes), e.before);
        const check = (what: string, g: ArrayLike<number>, w: ArrayLike<number>, w64: ArrayLike<number>, wj: ArrayLike<number>) => {
          const spread = Float64Array.from(w, (v, k) => Math.max(Math.abs(v - w64[k]!), Math.abs(v - wj[k]!)));
          const { error, at } = parityError(g, w, { spread, peakShare: PEAK_SHARE });
          if (!(error <= TOLERANCE)) report(what, `error ${error.toExponential(2)} > ${TOLERANCE} at element ${at} of ${w.length}: ${g[at]} vs oracle ${w[at]} (f64 ${w64[at]})`, i);
        };
        check('loss', [got.result.loss], [e.want.result.loss], [e.loss64], [e.jittered.result.loss]);
        check('logits', got.result.logits, e.want.result.logits, e.logits64, e.jittered.result.logits);
        for (const [n, w] of e.want.state) {
          if (e.skip.has(n) || e.skip.has(n.slice(0, n.lastIndexOf('.')))) continue;
          const g = s.kind === 'train' ? adamExplained(training.optimizer, s.step, n, got.state, e.state64, scalars(i)?.lr) : undefined;
          check(`state ${n}`, g ? Float64Array.from(got.state.get(n)!, (v, k) => v - g[k]!) : got.state.get(n)!, w, e.state64.get(n) ?? e.before.get(n)!, e.jittered.state.get(n)!);
        }
      }
    } catch (err) {
      report('error', describeError(err));
    } finally {
      dut?.dispose();
    }
    ms[fb.name] = performance.now() - t;
  }
  const leftOut = [...new Set(expected.flatMap((e) => [...e.skip]))];
  return { ok: mismatches.length === 0, mismatches, ms, leftOut };
}

/**
 * For a parameter Adam (or AdamW) updates at `step`: per element, how much of the backend's new
 * value its own optimizer state explains, i.e. the update recomputed in f64 from the backend's
 * exp_avg and exp_avg_sq minus the same from the oracle's (f64) ones; undefined for anything else.
 *
 * Why: the update is lr·m̂/(√v̂ + eps), which for a gradient g of a few eps (1e-8) is
 * lr·g/(|g| + eps) and moves by lr·eps/(|g| + eps)² per unit of g: ~4e4 at |g| = 4e-8, where one
 * f32 rounding of the gradient (1e-9: fuzz seed 102's fc1.weight, |g| 3.4e-7 of the tensor's peak,
 * where the reference, wasm, wasm-plain and webgpu gradients spread over 3.79e-8..3.92e-8) moves
 * the weight by 4e-5. The oracle's spread does not see that rounding: there its f32 and f64
 * gradients agree to 3e-6 and the jittered images move it by 3e-5, relatively, while the
 * backends, each rounding in its own kernels (other sum orders, relaxed SIMD's fused
 * multiply-adds, their own exp), spread by 3%. The
 * gradient itself is still judged, through exp_avg and exp_avg_sq (m = β1·m + (1-β1)·g, v likewise
 * with g²), compared like every other state tensor; what is subtracted here is only the
 * amplification of their accepted differences by the update, so an error of the update kernel
 * itself (or of a weight decay, which does not depend on the state) is still caught.
 */
export function adamExplained(opt: ResolvedOptimizer, step: number, name: string, got: ReadonlyMap<string, Float32Array>, want64: ReadonlyMap<string, ArrayLike<number>>, lr = opt.lr): Float64Array | undefined {
  if (opt.type === 'sgd') return undefined;
  const [m1, v1, m0, v0] = [got.get(`${name}.exp_avg`), got.get(`${name}.exp_avg_sq`), want64.get(`${name}.exp_avg`), want64.get(`${name}.exp_avg_sq`)];
  if (!m1 || !v1 || !m0 || !v0) return undefined;
  const [beta1, beta2] = opt.betas;
  const t = step + 1;
  // adam_step (src/ir/ops/optimizer.ts): p - lr/(1-β1^t) · m / (√v/√(1-β2^t) + eps).
  const update = (m: number, v: number) => ((lr / -Math.expm1(t * Math.log(beta1))) * m) / (Math.sqrt(v) / Math.sqrt(-Math.expm1(t * Math.log(beta2))) + opt.eps);
  return Float64Array.from(m1, (m, k) => update(m0[k]!, v0[k]!) - update(m, v1[k]!));
}

/** A generated case, run: its model file stays on disk (the reproducer) only when it fails. */
export async function runCase(seed: number, opts: CheckOptions): Promise<CaseResult & { seed: number; file: string; source: string; describe: string; report?: string }> {
  const generated = generateModel(seed);
  const { file, source } = writeReproducer(generated.source, seed);
  const describe = generated.describe;
  const r = await checkModelFile(file, opts);
  if (r.ok) {
    rmSync(file, { force: true });
    return { ...r, seed, file, source, describe };
  }
  return { ...r, seed, file, source, describe, report: formatFailure(seed, file, source, r) };
}

/** Writes a case's model file where a person can run it again (its header naming its own path); the path and the text. */
export function writeReproducer(generated: string, seed: number): { file: string; source: string } {
  const dir = join(tmpdir(), 'kiln-fuzz');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `case-${seed}.ts`);
  const source = generated.replace('--model THIS_FILE', `--model ${file}`);
  writeFileSync(file, source);
  return { file, source };
}

/** The report of a failing case: seed, file, the first mismatch of each backend, the model file. */
export function formatFailure(seed: number, file: string, source: string, r: CaseResult): string {
  const first = new Map<string, Mismatch>();
  for (const m of r.mismatches) if (!first.has(m.backend)) first.set(m.backend, m);
  const lines = [`FAIL case ${seed}: reproducer ${file}`];
  for (const m of first.values()) {
    const s = m.step === undefined ? '' : ` step ${m.step} (${SCHEDULE[m.step]!.kind} ${SCHEDULE[m.step]!.batch})`;
    const more = r.mismatches.filter((x) => x.backend === m.backend).length - 1;
    lines.push(`  ${m.backend}${s} ${m.what}: ${m.message}${more > 0 ? ` (and ${more} more)` : ''}`);
  }
  lines.push(`  re-run: npm run fuzz -- --model ${file}`, '----- model file -----', source.trimEnd(), '----------------------');
  return lines.join('\n');
}
