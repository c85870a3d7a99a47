/**
 * How `kiln bench` talks to a peer harness (bench/peers/*.ts here, pytorch.py in Python): the
 * job as JSON in argv[2]; `progress: TEXT` lines on stderr while it runs; one JSON line on stdout
 * at the end, a `PeerOutput` or `{ "error": "..." }`. The harness times; the bench computes the
 * medians, so every system is summarised the same way.
 */
import { readFileSync } from 'node:fs';

export type Layer =
  | { op: 'conv2d'; in: number; out: number; kernel: number; padding: number }
  | { op: 'batchNorm'; features: number }
  | { op: 'relu' }
  | { op: 'maxPool2d'; kernel: number }
  | { op: 'avgPool2d'; kernel: number }
  | { op: 'flatten' }
  | { op: 'linear'; in: number; out: number }
  | { op: 'dropout'; p: number };

export type Optimizer =
  | { type: 'sgd'; lr: number; momentum: number; nesterov: boolean; weightDecay: number }
  | { type: 'adam' | 'adamw'; lr: number; betas: [number, number]; eps: number; weightDecay: number };

export interface PeerJob {
  model: string;
  layers: Layer[];
  /** One example's shape, [C, H, W]. */
  input: number[];
  classes: number;
  batchSize: number;
  optimizer: Optimizer;
  warmup: number;
  steps: number;
  /** Stop measuring training after this many seconds (at least one step is measured). */
  seconds: number;
  inferBatch: number;
  /** Raw little-endian f32 files: x [batch, ...input], y [batch] class indices, and the inference batch. */
  data: { x: string; y: string; xi: string; yi: string };
  /** The harness's own settings (threads, backend, memory format, ...). */
  options: Record<string, unknown>;
}

export interface PeerOutput {
  /** Threads the peer ran on, as it reports them. */
  threads: number;
  /** Seconds to build the model, optimizer and (where there is one) the compiled step, before the first step. */
  setupSeconds: number;
  /** The first step, warm-up included in nothing else: compilation on first use shows here. */
  firstStepSeconds: number;
  trainSeconds: number[];
  inferSeconds: number[];
  paramCount: number;
  version: string;
  note?: string;
}

export function readJob(): PeerJob {
  return JSON.parse(process.argv[2]!) as PeerJob;
}

export function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function progress(text: string): void {
  process.stderr.write(`progress: ${text}\n`);
}

/** Warm-up, then measured calls until `steps` or `seconds`; the first call's time is kept apart. */
export async function timeLoop(n: { warmup: number; steps: number; seconds: number }, what: string, fn: (i: number) => Promise<void> | void): Promise<{ first: number; times: number[] }> {
  let first = NaN;
  const times: number[] = [];
  const start = performance.now();
  let warmedAt = -1;
  for (let i = 0; ; i++) {
    // As kiln bench warms kiln: `warmup` calls and at least a second (JIT tier-up takes time, not a count).
    const elapsed = (performance.now() - start) / 1000;
    if (warmedAt < 0 && i >= n.warmup && (n.warmup === 0 || elapsed >= Math.min(1, n.seconds / 4))) warmedAt = elapsed;
    const measuring = warmedAt >= 0;
    if (measuring && (times.length >= n.steps || (times.length > 0 && elapsed - warmedAt > n.seconds))) break;
    progress(measuring ? `${what} ${times.length + 1}/${n.steps}` : `${what} warm-up ${i + 1}`);
    const t = performance.now();
    await fn(i);
    const dt = (performance.now() - t) / 1000;
    if (i === 0) first = dt;
    if (measuring) times.push(dt);
  }
  return { first, times };
}

/** Runs the harness body and prints its one JSON line; an exception becomes `{ error }`. */
/**
 * Refuses what the JavaScript harnesses do not write out (models.json also holds ResNet-20's
 * residual blocks, global pooling and stride-2 bias-free convolutions, which only the PyTorch
 * harness builds), rather than training another model than the one named.
 */
function checkLayers(layers: readonly unknown[]): void {
  const known = new Set(['conv2d', 'batchNorm', 'relu', 'maxPool2d', 'avgPool2d', 'flatten', 'linear', 'dropout']);
  for (const l of layers as ({ op: string; stride?: number; bias?: boolean })[]) {
    if (!known.has(l.op)) throw new Error(`this harness has no ${l.op} layer`);
    if (l.op === 'conv2d' && ((l.stride ?? 1) !== 1 || l.bias === false)) throw new Error('this harness writes out only stride-1 convolutions with a bias');
  }
}

export async function main(body: (job: PeerJob) => Promise<PeerOutput>): Promise<void> {
  let out: PeerOutput | { error: string };
  try {
    const job = readJob();
    checkLayers(job.layers);
    out = await body(job);
  } catch (e) {
    out = { error: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
  }
  process.stdout.write(`\n${JSON.stringify(out)}\n`);
  // Worker pools (jax-js, TF.js) keep the event loop alive.
  process.exit(0);
}
