/**
 * `kiln bench`: every registered backend (and, with --peers, TensorFlow.js, jax-js and PyTorch)
 * training the same models in one run, with a table, JSON, Markdown and an SVG chart.
 *
 * What a backend may tell the bench, beyond the `Backend` interface (all optional, read by name so
 * a new backend needs no bench edit):
 * - `program: Program`, or `compiled('train', batch).program` — the Program its training step runs:
 *   kernels per step and the arena plan (otherwise the bench compiles the graph the way the
 *   session's reference backend does, with src/passes/compile.ts);
 * - `dispatchesPerStep: number` — launches per step when it differs from the kernel count;
 * - `threads: number` — the threads it runs on; a backend without it is run once, not per `--threads`;
 * - `queued` (src/runtime/backend.ts) — steps are queued `depth` at a time and flushed, and each
 *   measurement is a flush divided by the steps in it.
 */
import { cpus, release, totalmem, type } from 'node:os';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { measureSimdPeak, measureSimdPeakThreads } from './simd-peak.ts';
import { KilnError } from '../ir/errors.ts';
import type { Program } from '../ir/program.ts';
import { summarize } from '../ir/printer/summary.ts';
import { loadModelFile, type LoadedModel } from '../frontend/loader.ts';
import { kilnRoot } from '../frontend/source-loc.ts';
import type { Backend, StepScalars } from '../runtime/backend.ts';
import { scheduleScalars } from '../runtime/schedule.ts';
import { fillBatch, MNIST_NORMALIZE, type Dataset, type Normalize } from '../runtime/data/dataset.ts';
import { loadDataset } from '../runtime/data/dataset-file.ts';
import type { TrainData } from '../runtime/data/feed.ts';
import { DEFAULT_VAL_FRACTION, fillWindows, isText } from '../runtime/data/text.ts';
import { loadTextDataset } from '../runtime/data/text-file.ts';
import { checkWritable, writeFileAtomic } from '../runtime/output-file.ts';
import { compileProgram } from '../passes/compile.ts';
import { REFERENCE_TARGET } from '../runtime/reference/target.ts';
import { formatMachine, formatSvg, formatTable, label, stepStats, writeMarkdown, type BenchReport, type BenchResult, type Budget, type MachineInfo } from './bench-report.ts';
import { configFor, peerConfigs, runPeer, type PeerJob } from './bench-peers.ts';
import { graphFor } from './graphs.ts';
import { nonNegInt, nonNegNumber, positiveInt } from './options.ts';
import { BACKENDS } from './flags.ts';
import { openSession, type SessionFlags } from './session.ts';

export interface BenchFlags {
  model?: string[];
  backends?: string;
  threads?: string;
  peers?: boolean;
  json?: string;
  markdown?: string;
  svg?: string;
  steps?: string;
  warmup?: string;
  seconds?: string;
  data?: string;
}

export const DEFAULT_MODELS = ['samples/simple-cnn.ts', 'samples/lenet.ts', 'samples/mlp.ts'];
export const INFER_BATCH = 1000;
/** Least warm-up time before measuring (when warm-up steps are asked for at all). */
export const WARMUP_SECONDS = 1;

/** A one-line status on a terminal (rewritten in place), one line per change elsewhere. */
export class Progress {
  private readonly tty: boolean;
  private last = '';
  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = out.isTTY === true;
  }
  /** `detail` changes often (step counts): shown on a terminal only. */
  update(what: string, detail = ''): void {
    if (this.tty) {
      // A pseudo-terminal without a size reports 0 columns.
      const cols = this.out.columns || 100;
      this.out.write(`\r\x1b[2K${`bench: ${what}${detail ? ` · ${detail}` : ''}`.slice(0, cols - 1)}`);
    } else if (what !== this.last) {
      this.out.write(`bench: ${what}\n`);
    }
    this.last = what;
  }
  done(): void {
    if (this.tty) this.out.write('\r\x1b[2K');
  }
}

/**
 * What a benchmark feeds a model and counts: a training batch and an inference input, with the
 * examples each step is worth. Image models: a batch of the training set, and INFER_BATCH test
 * images per inference step. Language models: B windows of T bytes (B·T tokens a step), and
 * generation: one window at batch 1, one new token per step.
 */
export interface BenchFeed {
  train: { x: Float32Array; labels: Float32Array };
  infer: { x: Float32Array; labels: Float32Array };
  perTrainStep: number;
  perInferStep: number;
  unit: 'images' | 'tokens';
}

export function benchFeed(data: TrainData, batchSize: number, normalize: Normalize): BenchFeed {
  if (!isText(data)) {
    return { train: batchOf(data.train, 0, batchSize, normalize), infer: batchOf(data.test, 0, INFER_BATCH, normalize), perTrainStep: batchSize, perInferStep: INFER_BATCH, unit: 'images' };
  }
  const T = data.context;
  const windows = (count: number) => {
    const x = new Float32Array(count * T);
    const labels = new Float32Array(count * T);
    fillWindows(data.train, Uint32Array.from({ length: count }, (_, i) => (i * T) % (data.train.length - T - 1)), 0, count, T, x, labels);
    return { x, labels };
  };
  // Generation's step reads one label, the next byte after the window (lastPositionGraph).
  const one = windows(1);
  return { train: windows(batchSize), infer: { x: one.x, labels: one.labels.slice(T - 1) }, perTrainStep: batchSize * T, perInferStep: 1, unit: 'tokens' };
}

/**
 * A language model's benchmark text when --data names none: 256 KiB of word salad from a fixed
 * hash (the speed of a step does not depend on what the bytes say), written where the run keeps
 * its files.
 */
function benchText(dir: string): string {
  const words = ['the', 'of', 'and', 'to', 'in', 'is', 'was', 'that', 'for', 'it', 'with', 'as', 'his', 'on', 'be', 'at', 'by', 'had', 'not', 'are'];
  let h = 1;
  let text = '';
  while (text.length < 256 * 1024) {
    h = (Math.imul(h, 1103515245) + 12345) >>> 0;
    text += words[(h >>> 16) % words.length] + ((h & 15) === 0 ? '.\n' : ' ');
  }
  const file = join(dir, 'bench-text.txt');
  writeFileSync(file, text);
  return file;
}

/** Fills `x`/`labels` with `count` consecutive samples of `split`, wrapping around a small split. */
function batchOf(data: Dataset['train'], first: number, count: number, normalize: Normalize): { x: Float32Array; labels: Float32Array } {
  const pixels = data.images.length / data.count;
  const idx = Uint32Array.from({ length: count }, (_, i) => (first + i) % data.count);
  const x = new Float32Array(count * pixels);
  const labels = new Float32Array(count);
  fillBatch(data, idx, 0, count, x, labels, normalize);
  return { x, labels };
}

/** What the FLOP counts and the peers need of a model, computed once per model. */
export interface ModelInfo {
  path: string;
  loaded: LoadedModel;
  trainFlops: number;
  paramCount: number;
  /** The training step's Program as compiled for the reference backend, for backends that expose none. */
  program: Program;
}

export async function modelInfo(path: string): Promise<ModelInfo> {
  const loaded = await loadModelFile(path);
  const t = loaded.training;
  const g = graphFor(loaded, 'train', { batchSize: t.batchSize, optimizer: t.optimizer });
  const s = summarize(g);
  return { path, loaded, trainFlops: s.flopsPerStep, paramCount: s.paramCount, program: compileProgram(g, REFERENCE_TARGET) };
}

/** The optional facts a backend may expose (see the top of this file). */
interface Introspect {
  program?: Program;
  compiled?: (kind: 'train', batch: number) => { program: Program };
  dispatchesPerStep?: number;
  threads?: number;
  queued?: {
    depth: number;
    queueTrainStep(x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): void;
    queueEvalStep(x: Float32Array, labels: Float32Array): void;
    flush(): Promise<{ loss: number }[]>;
  };
}

/**
 * Times `fn` over warm-up then measured calls within a budget; returns the first call's time and
 * the measured ones. `fn` runs `per` steps a call (queued backends); times are per step.
 */
async function timeSteps(fn: (i: number) => Promise<void> | void, b: Budget, onStep: (k: number, measuring: boolean) => void, per = 1): Promise<{ first: number; times: number[] }> {
  let first = NaN;
  const times: number[] = [];
  const start = performance.now();
  let warmedAt = -1;
  for (let i = 0; ; i++) {
    // Warm-up: `warmup` calls and, when there are any, at least WARMUP_SECONDS (V8 moves hot wasm
    // from its baseline compiler to the optimising one while the code runs, not after a count).
    const elapsed = (performance.now() - start) / 1000;
    if (warmedAt < 0 && i >= b.warmup && (b.warmup === 0 || elapsed >= Math.min(WARMUP_SECONDS, b.seconds / 4))) warmedAt = elapsed;
    const measuring = warmedAt >= 0;
    if (measuring && (times.length >= b.steps || (times.length > 0 && elapsed - warmedAt > b.seconds))) break;
    onStep(measuring ? times.length + 1 : i + 1, measuring);
    const t = performance.now();
    await fn(i);
    const dt = (performance.now() - t) / 1000 / per;
    if (i === 0) first = dt;
    if (measuring) times.push(dt);
  }
  return { first, times };
}

export interface KilnRunOptions {
  backend: string;
  threads: number;
  data?: string;
  budget: Budget;
  /** GFLOP/s of the SIMD peak by thread count (missing counts scale the 1-thread peak). */
  peak: (threads: number) => number;
  progress: Progress;
  /** How a session is opened (tests and experiments substitute their own). Default: openSession. */
  open?: typeof openSession;
}

/** Measures one kiln backend on one model. Returns the row and whether the backend is threaded. */
export async function benchKiln(m: ModelInfo, o: KilnRunOptions): Promise<{ result: BenchResult; threaded: boolean }> {
  const t = m.loaded.training;
  const base: BenchResult = {
    name: m.loaded.name, model: m.path, system: 'kiln', backend: o.backend, settings: o.threads > 1 ? `${o.threads} threads` : 'default', threads: o.threads, batchSize: t.batchSize,
    trainImagesPerSec: null, trainSpread: null, inferImagesPerSec: null, compileSeconds: null, gflops: null, peakFraction: null,
    kernelsPerStep: null, dispatchesPerStep: null, arenaBytes: null, lowerBoundBytes: null, steps: 0,
  };
  const what = `${m.loaded.name} · ${label(base)}`;
  o.progress.update(what, 'compiling');
  let backend: Backend | undefined;
  try {
    // Data loading is a file read; it is timed apart and left out of the compile time.
    const d0 = performance.now();
    if (t.dataset !== 'text') loadDataset(o.data ?? t.dataset);
    const dataSeconds = (performance.now() - d0) / 1000;
    const c0 = performance.now();
    // Only the wasm backend takes --threads (openSession refuses it for the others).
    const flags: SessionFlags = { backend: o.backend, threads: o.backend === 'wasm' ? String(o.threads) : undefined, data: o.data };
    // A language model's batch-1 step is timed as generation runs it: the last position only.
    const session = await (o.open ?? openSession)(m.path, flags, { generation: true });
    const openSeconds = Math.max(0, (performance.now() - c0) / 1000 - dataSeconds);
    backend = session.backend;
    const info = backend as Backend & Introspect;
    const threaded = typeof info.threads === 'number';
    const threads = threaded ? info.threads! : 1;
    const feed = benchFeed(session.data, t.batchSize, session.normalize);
    const { x, labels } = feed.train;
    const q = info.queued;
    const per = q ? Math.max(1, q.depth) : 1;
    // A queued measurement is `depth` steps already: one warm-up flush is enough.
    const budget = q ? { ...o.budget, warmup: Math.min(o.budget.warmup, 1) } : o.budget;
    // A benchmark times steps, not a schedule: every step gets a scheduled model's first values.
    const scalars = scheduleScalars(session.training.optimizer, 1)?.(0);
    const checkLoss = (loss: number, i: number) => {
      if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${i}`);
    };
    const train = await timeSteps(
      async (i) => {
        if (!q) return checkLoss(backend!.trainStep(x, labels, i, scalars).loss, i);
        for (let k = 0; k < per; k++) q.queueTrainStep(x, labels, i * per + k, scalars);
        for (const r of await q.flush()) checkLoss(r.loss, i);
      },
      budget,
      (k, measuring) => o.progress.update(what, measuring ? `training ${per > 1 ? `${per} steps` : 'step'} ${k}/${budget.steps}` : `warm-up ${k}`),
      per,
    );
    const stats = stepStats(train.times, feed.perTrainStep)!;
    const steady = feed.perTrainStep / stats.median;
    const inferData = feed.infer;
    // One warm-up batch builds the batch-1000 step; a slow backend (reference) gets one measured batch.
    const inferBudget = { warmup: 1, steps: Math.max(1, Math.min(o.budget.steps, 10)), seconds: o.budget.seconds / 2 };
    const infer = await timeSteps(
      async () => {
        if (!q) return void backend!.evalStep(inferData.x, inferData.labels);
        q.queueEvalStep(inferData.x, inferData.labels);
        await q.flush();
      },
      inferBudget,
      (k, measuring) => o.progress.update(what, measuring ? `inference batch ${k}` : 'inference warm-up'),
    );
    const gflops = m.trainFlops / steady / 1e9;
    const own = info.program ?? info.compiled?.('train', t.batchSize).program;
    const program = own ?? m.program;
    return {
      threaded,
      result: {
        ...base,
        threads,
        trainImagesPerSec: stats.median,
        trainSpread: stats.spread,
        inferImagesPerSec: stepStats(infer.times, feed.perInferStep)!.median,
        ...(feed.unit === 'tokens' ? { unit: 'tokens' as const } : {}),
        compileSeconds: openSeconds + Math.max(0, train.first - steady),
        gflops,
        peakFraction: gflops / o.peak(threads),
        kernelsPerStep: program.kernels.length,
        dispatchesPerStep: info.dispatchesPerStep ?? program.kernels.length,
        arenaBytes: program.memory.arenaBytes,
        lowerBoundBytes: program.memory.lowerBoundBytes,
        steps: train.times.length,
        ...(own ? {} : { note: `kiln ${o.backend}: kernels and arena of the Program the session compiles for it (src/passes/compile.ts); the backend exposes none` }),
      },
    };
  } catch (e) {
    const msg = e instanceof KilnError ? e.message : (e as Error).message;
    return { threaded: false, result: { ...base, note: `${label(base)} failed: ${msg}` } };
  } finally {
    backend?.dispose();
  }
}

function parseList(flag: string, v: string): string[] {
  const items = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!items.length) throw new KilnError('usage', `${flag} needs a comma-separated list; got '${v}'`);
  return items;
}

/** The command as the user typed it: `npm run bench -- --peers` when npm ran the bench script. */
export function commandLine(args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const script = env.npm_lifecycle_event === 'bench' ? env.npm_lifecycle_script?.trim().split(/\s+/) : undefined;
  const at = script?.indexOf('bench') ?? -1;
  if (script && at >= 0) {
    const own = script.slice(at + 1);
    if (own.every((a, i) => args[i] === a)) {
      const extra = args.slice(own.length);
      return `npm run bench${extra.length ? ` -- ${extra.join(' ')}` : ''}`;
    }
  }
  return ['kiln', 'bench', ...args].join(' ');
}

function machineInfo(peaks: Record<string, number>, command: string): MachineInfo {
  const cpu = cpus();
  return {
    cpu: (cpu[0]?.model ?? 'unknown CPU').trim(),
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()}`,
    node: process.versions.node,
    simdPeakGflops: peaks,
    date: new Date().toISOString().slice(0, 10),
    command,
  };
}

export async function benchCommand(flags: BenchFlags): Promise<void> {
  const budget: Budget = {
    warmup: flags.warmup === undefined ? 2 : nonNegInt('--warmup', flags.warmup),
    steps: flags.steps === undefined ? 30 : positiveInt('--steps', flags.steps),
    seconds: flags.seconds === undefined ? 8 : nonNegNumber('--seconds', flags.seconds),
  };
  const registered: readonly string[] = BACKENDS;
  const backends = flags.backends ? parseList('--backends', flags.backends) : [...registered];
  for (const b of backends) {
    if (!registered.includes(b)) throw new KilnError('usage', `--backends: unknown backend '${b}' (registered: ${registered.join(', ')})`);
  }
  const threadCounts = flags.threads ? parseList('--threads', flags.threads).map((t) => positiveInt('--threads', t)) : [1, 2];
  // The peer harnesses (bench/peers) and the libraries they run (TensorFlow.js, jax-js: dev
  // dependencies) come with a checkout of the repository, not with the installed package.
  if (flags.peers && !existsSync(join(kilnRoot, 'bench', 'peers'))) {
    throw new KilnError('usage', '--peers needs a checkout of the kiln repository: the installed package carries neither the peer harnesses nor TensorFlow.js and jax-js', undefined, 'clone the repository, run `npm install` there, and run `npm run bench -- --peers` in it');
  }
  for (const [flag, path] of [['--json', flags.json], ['--markdown', flags.markdown], ['--svg', flags.svg]] as const) if (path) checkWritable(flag, path);
  const models = flags.model?.length ? flags.model : DEFAULT_MODELS.map((p) => relative(process.cwd(), join(kilnRoot, p)) || p);
  const progress = new Progress();

  // The peak is measured before and after the run and the higher kept: on a shared machine a
  // single measurement can land on a busy moment.
  const peaks: Record<string, number> = {};
  const measurePeaks = async () => {
    progress.update('measuring the WebAssembly SIMD peak');
    peaks['1'] = Math.max(peaks['1'] ?? 0, measureSimdPeak());
    for (const t of threadCounts) if (t > 1) peaks[String(t)] = Math.max(peaks[String(t)] ?? 0, await measureSimdPeakThreads(t));
  };
  await measurePeaks();
  const peak = (t: number) => peaks[String(t)] ?? peaks['1']! * t;

  const results: BenchResult[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-bench-'));
  let textFile: string | undefined;
  try {
    // One throwaway session and step per backend first, so no configuration's compile time carries
    // the process's one-time costs (importing binaryen and warming its own code, starting a device).
    for (const backend of backends) {
      progress.update(`starting the ${backend} backend`);
      try {
        const s = await openSession(models[0]!, { backend, threads: backend === 'wasm' ? String(threadCounts[0]) : undefined, data: flags.data });
        try {
          const { x, labels } = benchFeed(s.data, s.training.batchSize, s.normalize).train;
          const q = (s.backend as Backend & Introspect).queued;
          const scalars = scheduleScalars(s.training.optimizer, 1)?.(0);
          if (q) {
            q.queueTrainStep(x, labels, 0, scalars);
            await q.flush();
          } else s.backend.trainStep(x, labels, 0, scalars);
        } finally {
          s.backend.dispose();
        }
      } catch {
        // The measured run reports the failure.
      }
    }
    for (const path of models) {
      progress.update(`loading ${path}`);
      const m = await modelInfo(path);
      // A language model reads --data when it names a text, else the bench's own.
      const data = m.loaded.training.dataset === 'text' && !flags.data?.endsWith('.txt') ? (textFile ??= benchText(tmp)) : flags.data;
      for (const backend of backends) {
        for (const threads of threadCounts) {
          const { result, threaded } = await benchKiln(m, { backend, threads, data, budget, peak, progress });
          results.push(result);
          if (!threaded) break;
        }
      }
      if (flags.peers) {
        const t = m.loaded.training;
        const d = t.dataset === 'text' ? loadTextDataset(data!, { context: t.input[0]!, valFraction: t.valFraction ?? DEFAULT_VAL_FRACTION }) : loadDataset(data ?? t.dataset);
        const feed = benchFeed(d, t.batchSize, isText(d) ? MNIST_NORMALIZE : d.normalize);
        const job: PeerJob = { model: m.loaded, paramCount: m.paramCount, budget, dir: tmp, ...feed };
        for (const all of peerConfigs(threadCounts)) {
          const cfg = configFor(all, m.loaded.name);
          if (!cfg) continue;
          const r = await runPeer(cfg, job, (detail) => progress.update(`${m.loaded.name} · ${cfg.system} ${cfg.backend}, ${cfg.settings}`, detail));
          const gflops = r.trainImagesPerSec === null ? null : (m.trainFlops * r.trainImagesPerSec) / feed.perTrainStep / 1e9;
          results.push({ ...r, model: path, gflops, peakFraction: gflops === null ? null : gflops / peak(r.threads) });
        }
      }
    }
    await measurePeaks();
  } finally {
    progress.done();
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const r of results) if (r.gflops !== null) r.peakFraction = r.gflops / peak(r.threads);

  const report: BenchReport = { machine: machineInfo(peaks, commandLine(process.argv.slice(process.argv.indexOf('bench') + 1))), results };
  process.stdout.write(`${formatMachine(report.machine)}\n\n${formatTable(results)}`);
  if (!flags.peers) process.stdout.write('\n(--peers adds TensorFlow.js, jax-js and PyTorch on the same models)\n');
  if (flags.json) writeFileAtomic(flags.json, JSON.stringify(report, null, 2) + '\n', 'JSON report');
  if (flags.svg) writeFileAtomic(flags.svg, formatSvg(report), 'SVG chart');
  if (flags.markdown) writeMarkdown(flags.markdown, report, flags.svg);
  for (const [f, what] of [[flags.json, 'JSON'], [flags.markdown, 'Markdown'], [flags.svg, 'SVG']] as const) if (f) process.stderr.write(`bench: ${what} written to ${f}${existsSync(f) ? '' : ' (missing!)'}\n`);
}
