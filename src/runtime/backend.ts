import type { Graph } from '../ir/graph.ts';

/** The compiled steps a backend runs, built on demand for each batch size (the last batch may be short). */
export interface StepSource {
  train(batchSize: number): Graph;
  eval(batchSize: number): Graph;
}

/** Builds each (kind, batch size) graph once. */
export function memoizeSteps(source: StepSource): StepSource {
  const cache = new Map<string, Graph>();
  const get = (kind: 'train' | 'eval', batch: number) => {
    const key = `${kind}/${batch}`;
    let g = cache.get(key);
    if (!g) cache.set(key, (g = source[kind](batch)));
    return g;
  };
  return { train: (b) => get('train', b), eval: (b) => get('eval', b) };
}

export interface StepResult {
  loss: number;
  /** [labels, classes]: a row per example, or per position of a language model's windows */
  logits: Float32Array;
}

/**
 * The batch size of a step's input: x is [batch, ...one example's shape]. Not the label count: a
 * language model has a label per position of each window ([batch·T], logits.view(-1, V)).
 */
export function batchOf(x: Float32Array, exampleSize: number): number {
  const batch = x.length / exampleSize;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`x holds ${x.length} values: not a whole, positive number of examples of ${exampleSize} values`);
  return batch;
}

/** Values per example of a step's x input (its shape without the batch dimension). */
export function exampleSizeOf(g: Graph): number {
  const shape = g.nodes[g.inputs.x!]!.shape;
  return shape.slice(1).reduce((a, d) => a * d, 1);
}

/**
 * Per-step scalar inputs beyond the step counter, by input name: a scheduled optimizer's `lr`
 * and `momentum` (src/runtime/schedule.ts). A step whose Program has such an input must be given
 * its value.
 */
export type StepScalars = Readonly<Record<string, number>>;

/**
 * The value of each scalar input of a step, by name: the step counter, and each of `scalars`
 * that the step reads. Throws for one it reads and was not given (a scheduled Program run
 * without its schedule).
 */
export function scalarFeeds(inputs: Iterable<string>, step: number, scalars: StepScalars = {}): [string, number][] {
  const out: [string, number][] = [];
  for (const name of inputs) {
    if (name === 'x' || name === 'labels') continue;
    const v = name === 'step' ? step : scalars[name];
    if (v === undefined) throw new Error(`the training step reads the per-step input '${name}' (a scheduled optimizer's) and was not given it (src/runtime/schedule.ts)`);
    out.push([name, v]);
  }
  return out;
}

/**
 * What the trainer needs of a backend: write and read persistent tensors, run a training step
 * (which updates them) or an evaluation step (which does not).
 */
export interface Backend {
  readonly name: string;
  /** Names and shapes of every persistent tensor (parameters, buffers, optimizer state). */
  readonly stateShapes: ReadonlyMap<string, readonly number[]>;
  setState(name: string, data: Float32Array): void;
  getState(name: string): Float32Array;
  trainStep(x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): StepResult;
  evalStep(x: Float32Array, labels: Float32Array): StepResult;
  /**
   * Compiles the step for a batch size now rather than at its first call, so that a trainer can
   * keep compilation out of its step times (and report it on its own). Await it: a backend may
   * need to load its compiler first.
   */
  prepare(kind: 'train' | 'eval', batch: number): void | Promise<void>;
  dispose(): void;
  /**
   * Present on backends whose device runs behind the host (webgpu), whose trainStep and evalStep
   * cannot answer at once: steps are queued and their results read back in batches.
   */
  readonly queued?: QueuedSteps;
}

/**
 * Steps that run asynchronously: queue as many as `depth` (the inputs are copied before queueing
 * returns), then flush to run them and read back each one's loss and logits. After any step
 * getState throws until sync() resolves; setState may be called at any time.
 */
export interface QueuedSteps {
  /** Steps worth queueing between flushes. */
  readonly depth: number;
  queueTrainStep(x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): void;
  queueEvalStep(x: Float32Array, labels: Float32Array): void;
  /** Runs every queued step; their results, in queueing order. */
  flush(): Promise<StepResult[]>;
  /** Brings getState up to date with the device. */
  sync(): Promise<void>;
}

/** One training step on any backend. */
export async function runTrainStep(b: Backend, x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): Promise<StepResult> {
  if (!b.queued) return b.trainStep(x, labels, step, scalars);
  b.queued.queueTrainStep(x, labels, step, scalars);
  return (await b.queued.flush()).at(-1)!;
}

/** One evaluation step on any backend. */
export async function runEvalStep(b: Backend, x: Float32Array, labels: Float32Array): Promise<StepResult> {
  if (!b.queued) return b.evalStep(x, labels);
  b.queued.queueEvalStep(x, labels);
  return (await b.queued.flush()).at(-1)!;
}

/** Makes getState current on any backend (a no-op on synchronous ones). */
export async function syncState(b: Backend): Promise<void> {
  await b.queued?.sync();
}
