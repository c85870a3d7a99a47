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
  /** [batch, classes] */
  logits: Float32Array;
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
  trainStep(x: Float32Array, labels: Float32Array, step: number): StepResult;
  evalStep(x: Float32Array, labels: Float32Array): StepResult;
  dispose(): void;
}
