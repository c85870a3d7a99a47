import { KilnError, type SourceLoc } from '../ir/errors.ts';

export interface SgdOptions {
  type: 'sgd';
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export interface AdamOptions {
  type: 'adam' | 'adamw';
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export type OptimizerOptions = SgdOptions | AdamOptions;

/** The `training` export of a model file. Every field has a default. */
export interface TrainingOptions {
  /** Shape of one example without the batch dimension, e.g. [1, 28, 28]. */
  input?: number[];
  dataset?: string;
  batchSize?: number;
  epochs?: number;
  loss?: 'crossEntropy';
  optimizer?: OptimizerOptions;
  seed?: number;
}

export type ResolvedOptimizer =
  | { type: 'sgd'; lr: number; momentum: number; nesterov: boolean; weightDecay: number }
  | { type: 'adam' | 'adamw'; lr: number; betas: [number, number]; eps: number; weightDecay: number };

export interface ResolvedTraining {
  input: number[];
  dataset: string;
  batchSize: number;
  epochs: number;
  loss: 'crossEntropy';
  optimizer: ResolvedOptimizer;
  seed: number;
}

/** PyTorch's defaults (torch.optim, 2.x; SGD has lr=1e-3 there). */
export function resolveOptimizer(o: OptimizerOptions | undefined, fail: (msg: string) => never): ResolvedOptimizer {
  const opt: Record<string, unknown> = { ...(o ?? {}) };
  opt.type ??= 'adam';
  const known = ['type', 'lr', 'momentum', 'nesterov', 'weightDecay', 'betas', 'eps'];
  for (const k of Object.keys(opt)) if (!known.includes(k)) fail(`optimizer has an unknown option '${k}' (known: ${known.join(', ')})`);
  const nonNeg = (k: string, dflt: number): number => {
    const v = opt[k] ?? dflt;
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) fail(`optimizer.${k} must be a non-negative number, got ${JSON.stringify(v)}`);
    return v;
  };
  const lr = nonNeg('lr', 1e-3);
  if (opt.type === 'sgd') {
    const momentum = nonNeg('momentum', 0);
    const nesterov = opt.nesterov ?? false;
    if (typeof nesterov !== 'boolean') fail('optimizer.nesterov must be true or false');
    if (nesterov && momentum === 0) fail('Nesterov momentum requires a momentum > 0');
    return { type: 'sgd', lr, momentum, nesterov, weightDecay: nonNeg('weightDecay', 0) };
  }
  if (opt.type === 'adam' || opt.type === 'adamw') {
    const betas = opt.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2 || betas.some((b) => typeof b !== 'number' || !(b >= 0 && b < 1))) fail(`optimizer.betas must be two numbers in [0, 1), got ${JSON.stringify(betas)}`);
    return { type: opt.type, lr, betas: betas as [number, number], eps: nonNeg('eps', 1e-8), weightDecay: nonNeg('weightDecay', opt.type === 'adamw' ? 0.01 : 0) };
  }
  return fail(`optimizer.type must be 'sgd', 'adam' or 'adamw', got ${JSON.stringify(opt.type)}`);
}

/** Checks a model file's `training` export and fills in the defaults. */
export function resolveTraining(raw: unknown, loc: SourceLoc): ResolvedTraining {
  const fail = (msg: string): never => {
    throw new KilnError('training-options', `training: ${msg}`, loc, 'see the `training` export in samples/simple-cnn.ts for the expected form');
  };
  if (raw === undefined) raw = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be an object');
  const t = raw as Record<string, unknown>;
  const known = ['input', 'dataset', 'batchSize', 'epochs', 'loss', 'optimizer', 'seed'];
  for (const k of Object.keys(t)) if (!known.includes(k)) fail(`unknown option '${k}' (known: ${known.join(', ')})`);
  const positiveInt = (k: string, dflt: number): number => {
    const v = t[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const input = t.input ?? [1, 28, 28];
  if (!Array.isArray(input) || input.length === 0 || input.some((d) => !Number.isInteger(d) || d < 1)) fail(`input must be a list of positive integers like [1, 28, 28], got ${JSON.stringify(input)}`);
  const dataset = t.dataset ?? 'mnist';
  if (typeof dataset !== 'string') fail(`dataset must be a string, got ${JSON.stringify(dataset)}`);
  const loss = t.loss ?? 'crossEntropy';
  if (loss !== 'crossEntropy') fail(`loss must be 'crossEntropy', got ${JSON.stringify(loss)}`);
  const seed = t.seed ?? 0;
  // As --seed and torch.manual_seed: any non-negative integer, of which the generator uses the low 32 bits.
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) fail(`seed must be a non-negative integer, got ${JSON.stringify(seed)}`);
  return {
    input: input as number[],
    dataset: dataset as string,
    batchSize: positiveInt('batchSize', 64),
    epochs: positiveInt('epochs', 1),
    loss: 'crossEntropy',
    optimizer: resolveOptimizer(t.optimizer as OptimizerOptions | undefined, fail),
    seed: seed as number,
  };
}
