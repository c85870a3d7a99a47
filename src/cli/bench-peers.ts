/**
 * Runs the peer harnesses of bench/peers (TensorFlow.js, jax-js, PyTorch) as child processes, one
 * per configuration, so each gets its own threads and a crash or a hang costs one row, not the run.
 * The models they build are the layer lists of bench/peers/models.json, checked here against
 * kiln's parameter count.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedModel } from '../frontend/loader.ts';
import { kilnRoot } from '../frontend/source-loc.ts';
import { stepStats, type BenchResult, type Budget } from './bench-report.ts';
import type { BenchFeed } from './bench.ts';

const PEERS_DIR = join(kilnRoot, 'bench', 'peers');
/** Debian's python3-torch is importable by this interpreter, not necessarily by the first python3 on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
/** Debian's libopenblas0-pthread: PyTorch picks it up through libblas.so.3 from this folder. */
const OPENBLAS_DIR = '/usr/lib/x86_64-linux-gnu/openblas-pthread';
/** A configuration that runs longer than this is stopped and reported as such. */
const PEER_TIMEOUT_S = 240;

/** One peer configuration: which harness, with which settings, labelled for the table. */
export interface PeerConfig {
  system: string;
  backend: string;
  settings: string;
  threads: number;
  harness: 'pytorch' | 'tfjs' | 'jax';
  options: Record<string, unknown>;
  env?: Record<string, string>;
  /** Only for models with a convolution (channels_last, TF.js's missing conv gradient): others skip it. */
  convOnly?: boolean;
  /** The label and options for a model without convolutions, where they differ. */
  noConv?: { settings: string; options: Record<string, unknown> };
  /** Set when this configuration cannot run here: the row says why and how to enable it. */
  unavailable?: string;
}

let torchProbe: { version: string } | { error: string } | undefined;
function probeTorch(): { version: string } | { error: string } {
  if (!torchProbe) {
    const r = existsSync(SYSTEM_PYTHON) ? spawnSync(SYSTEM_PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 }) : undefined;
    torchProbe = r && r.status === 0 ? { version: r.stdout.trim() } : { error: `PyTorch is not installed for ${SYSTEM_PYTHON}: \`apt-get install python3-torch\` (Debian) enables this peer` };
  }
  return torchProbe;
}

/**
 * Every peer configuration: each system with its defaults, then with the best settings found
 * for it on this machine (see BENCHMARKS.md for how they were chosen).
 */
export function peerConfigs(threadCounts: readonly number[]): PeerConfig[] {
  const maxT = Math.max(...threadCounts);
  const torch = probeTorch();
  const torchMissing = 'error' in torch ? torch.error : undefined;
  const tv = 'version' in torch ? `PyTorch ${torch.version.replace(/a0$/, '').replace(/^(\d+\.\d+).*/, '$1')}` : 'PyTorch';
  // Defaults, then the best found: channels_last (oneDNN's NHWC convolutions) and OpenBLAS for the
  // linear layers, on one thread and on all of them. On a loaded 2-core machine two OpenMP threads
  // can lose to one (a descheduled thread stalls every barrier), so both are kept.
  const openblas = existsSync(join(OPENBLAS_DIR, 'libblas.so.3'))
    ? undefined
    : 'OpenBLAS is not installed: `apt-get install libopenblas0-pthread` makes it the BLAS PyTorch uses (Debian\'s default is the slow reference BLAS)';
  const tuned = (t: number): PeerConfig => ({
    system: tv, backend: 'eager', settings: `${t} thread${t > 1 ? 's' : ''}, channels_last, OpenBLAS`, threads: t, harness: 'pytorch',
    options: { threads: t, channelsLast: true, openblas: true },
    noConv: { settings: `${t} thread${t > 1 ? 's' : ''}, OpenBLAS`, options: { threads: t, openblas: true } },
    env: { LD_LIBRARY_PATH: OPENBLAS_DIR },
    unavailable: torchMissing ?? openblas,
  });
  const configs: PeerConfig[] = [
    { system: tv, backend: 'eager', settings: '1 thread (default)', threads: 1, harness: 'pytorch', options: { threads: 1 }, unavailable: torchMissing },
    tuned(1),
  ];
  if (maxT > 1) configs.push({ system: tv, backend: 'eager', settings: `${maxT} threads`, threads: maxT, harness: 'pytorch', options: { threads: maxT }, unavailable: torchMissing }, tuned(maxT));
  configs.push(
    { system: 'TensorFlow.js', backend: 'cpu', settings: 'default', threads: 1, harness: 'tfjs', options: { backend: 'cpu' } },
    { system: 'TensorFlow.js', backend: 'wasm', settings: 'as shipped', threads: 1, harness: 'tfjs', options: { backend: 'wasm', addFilterGrad: false }, convOnly: true },
    {
      system: 'TensorFlow.js', backend: 'wasm', settings: 'with a JS Conv2DBackpropFilter', threads: 1, harness: 'tfjs', options: { backend: 'wasm', addFilterGrad: true },
      noConv: { settings: 'as shipped', options: { backend: 'wasm' } },
    },
    { system: 'TensorFlow.js', backend: 'wasm', settings: 'weight gradient as a conv', threads: 1, harness: 'tfjs', options: { backend: 'wasm', convGrad: true }, convOnly: true },
    { system: 'jax-js', backend: 'wasm', settings: '1 thread (default in Node)', threads: 1, harness: 'jax', options: { workers: 0 } },
  );
  if (maxT > 1) configs.push({ system: 'jax-js', backend: 'wasm', settings: `${maxT} threads (worker_threads as Worker)`, threads: maxT, harness: 'jax', options: { workers: maxT } });
  return configs;
}

/** What one model's peer runs share: the model, its data as raw f32 files (and what a step of each is worth: BenchFeed), the budget. */
export interface PeerJob extends BenchFeed {
  model: LoadedModel;
  paramCount: number;
  budget: Budget;
  dir: string;
}

interface PeerOutput {
  threads: number;
  setupSeconds: number;
  firstStepSeconds: number;
  trainSeconds: number[];
  inferSeconds: number[];
  paramCount: number;
  version: string;
  note?: string;
}

function newest(dir: string): number {
  return Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));
}

/** The harness as an .mjs under dist/bench, rebuilt with esbuild when a source is newer. */
async function harnessScript(name: string): Promise<string> {
  const out = join(kilnRoot, 'dist', 'bench', `${name}.mjs`);
  if (!existsSync(out) || statSync(out).mtimeMs < newest(PEERS_DIR)) {
    const { build } = await import('esbuild');
    mkdirSync(join(kilnRoot, 'dist', 'bench'), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp.mjs`;
    await build({ entryPoints: [join(PEERS_DIR, `${name}.ts`)], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: tmp, logLevel: 'error' });
    const { renameSync } = await import('node:fs');
    renameSync(tmp, out);
  }
  return out;
}

function runChild(cmd: string, args: string[], env: Record<string, string> | undefined, onProgress: (s: string) => void): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd: kilnRoot });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), PEER_TIMEOUT_S * 1000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /progress: ([^\n]*)\n(?![^]*progress: )/.exec(String(d));
      if (m) onProgress(m[1]!);
    });
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr, timedOut })));
  });
}

const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The configuration as it applies to a model: null when it does not (a conv-only setting on a model without convolutions). */
export function configFor(cfg: PeerConfig, model: string): PeerConfig | null {
  const layers = peerModels()[model];
  const conv = layers === undefined || layers.some((l) => l.op === 'conv2d');
  if (conv) return cfg;
  if (cfg.convOnly) return null;
  return cfg.noConv ? { ...cfg, ...cfg.noConv } : cfg;
}

function peerModels(): Record<string, { op: string }[]> {
  return JSON.parse(readFileSync(join(PEERS_DIR, 'models.json'), 'utf8')) as Record<string, { op: string }[]>;
}

/** Runs one configuration (as given by configFor) on one model; never throws: a failure is a row with the reason. */
export async function runPeer(cfg: PeerConfig, job: PeerJob, onProgress: (detail: string) => void): Promise<BenchResult> {
  const t = job.model.training;
  const row: BenchResult = {
    name: job.model.name, model: job.model.file, system: cfg.system, backend: cfg.backend, settings: cfg.settings, threads: cfg.threads, batchSize: t.batchSize,
    trainImagesPerSec: null, trainSpread: null, inferImagesPerSec: null, compileSeconds: null, gflops: null, peakFraction: null,
    kernelsPerStep: null, dispatchesPerStep: null, arenaBytes: null, lowerBoundBytes: null, steps: 0,
  };
  const fail = (why: string): BenchResult => ({ ...row, note: `${cfg.system} ${cfg.backend}, ${cfg.settings}: ${why}` });
  if (cfg.unavailable) return fail(cfg.unavailable);
  const layers = peerModels()[job.model.name];
  if (!layers) return fail(`no peer definition of ${job.model.name} in bench/peers/models.json`);
  const data = { x: join(job.dir, `${job.model.name}.x`), y: join(job.dir, `${job.model.name}.y`), xi: join(job.dir, `${job.model.name}.xi`), yi: join(job.dir, `${job.model.name}.yi`) };
  if (!existsSync(data.yi)) {
    writeFileSync(data.x, f32(job.train.x));
    writeFileSync(data.y, f32(job.train.labels));
    writeFileSync(data.xi, f32(job.infer.x));
    writeFileSync(data.yi, f32(job.infer.labels));
  }
  const spec = {
    model: job.model.name, layers, input: t.input, classes: 10, batchSize: t.batchSize, optimizer: t.optimizer,
    warmup: Math.max(1, job.budget.warmup), steps: job.budget.steps, seconds: job.budget.seconds, inferBatch: job.unit === 'tokens' ? 1 : job.perInferStep, text: job.unit === 'tokens', data, options: cfg.options,
  };
  let cmd: string;
  let args: string[];
  try {
    if (cfg.harness === 'pytorch') {
      cmd = SYSTEM_PYTHON;
      args = [join(PEERS_DIR, 'pytorch.py'), JSON.stringify(spec)];
    } else {
      cmd = process.execPath;
      args = [await harnessScript(cfg.harness), JSON.stringify(spec)];
    }
  } catch (e) {
    return fail(`could not build the harness: ${(e as Error).message}`);
  }
  onProgress('starting');
  const r = await runChild(cmd, args, cfg.env, onProgress);
  if (r.timedOut) return fail(`stopped after ${PEER_TIMEOUT_S} s`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let out: PeerOutput | { error: string };
  try {
    out = JSON.parse(last) as PeerOutput | { error: string };
  } catch {
    const err = r.stderr.trim().split('\n').filter((l) => !l.startsWith('progress: ')).slice(-3).join(' / ');
    return fail(`exited with ${r.code}${err ? `: ${err.slice(0, 300)}` : ''}`);
  }
  if ('error' in out) return fail(out.error);
  const train = stepStats(out.trainSeconds, job.perTrainStep);
  const infer = stepStats(out.inferSeconds, job.perInferStep);
  const notes: string[] = [];
  if (out.note) notes.push(out.note);
  if (out.paramCount !== job.paramCount) notes.push(`parameter count ${out.paramCount} differs from kiln's ${job.paramCount}`);
  return {
    ...row,
    threads: out.threads,
    trainImagesPerSec: train?.median ?? null,
    trainSpread: train?.spread ?? null,
    inferImagesPerSec: infer?.median ?? null,
    compileSeconds: train ? out.setupSeconds + Math.max(0, out.firstStepSeconds - job.perTrainStep / train.median) : null,
    ...(job.unit === 'tokens' ? { unit: 'tokens' as const } : {}),
    steps: out.trainSeconds.length,
    ...(notes.length ? { note: `${cfg.system} ${cfg.backend}, ${cfg.settings}: ${notes.join('; ')}` } : {}),
  };
}
