import { KilnError, type SourceLoc } from '../ir/errors.ts';
import type { Augment } from '../runtime/data/augment.ts';
import type { Normalize } from '../runtime/data/dataset.ts';

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
  /** torchvision's Normalize: a mean and std per channel, or one of each for all (default MNIST's). */
  normalize?: { mean: number | number[]; std: number | number[] };
  /** torchvision's RandomCrop and RandomHorizontalFlip, applied to the training images each epoch. */
  augment?: { randomCrop?: { size: number; padding?: number }; horizontalFlip?: number };
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
  /** Present only when set, so that a bundle written before these options verifies unchanged. */
  normalize?: Normalize;
  augment?: Augment;
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

/** Checks `training.normalize` ({ mean, std }, numbers or lists of one per channel). */
export function resolveNormalize(raw: unknown, fail: (msg: string) => never): Normalize {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`normalize must be { mean, std } (numbers, or lists of one per channel), got ${JSON.stringify(raw)}`);
  const n = raw as Record<string, unknown>;
  for (const k of Object.keys(n)) if (k !== 'mean' && k !== 'std') fail(`normalize has an unknown option '${k}' (known: mean, std)`);
  const list = (k: 'mean' | 'std', ok: (v: number) => boolean, what: string): number[] => {
    const v = typeof n[k] === 'number' ? [n[k]] : n[k];
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !ok(x))) fail(`normalize.${k} must be ${what}, or a list of one per channel, got ${JSON.stringify(n[k])}`);
    return v as number[];
  };
  const mean = list('mean', Number.isFinite, 'a finite number');
  const std = list('std', (x) => x > 0 && Number.isFinite(x), 'a positive number');
  if (mean.length !== std.length) fail(`normalize has ${mean.length} means but ${std.length} stds`);
  return { mean, std };
}

/** Checks `training.augment` (torchvision's RandomCrop(size, padding) and RandomHorizontalFlip(p)). */
export function resolveAugment(raw: unknown, fail: (msg: string) => never): Augment {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`augment must be an object like { randomCrop: { size: 32, padding: 4 }, horizontalFlip: 0.5 }, got ${JSON.stringify(raw)}`);
  const a = raw as Record<string, unknown>;
  for (const k of Object.keys(a)) if (k !== 'randomCrop' && k !== 'horizontalFlip') fail(`augment has an unknown option '${k}' (known: randomCrop, horizontalFlip)`);
  const out: { randomCrop?: Augment['randomCrop']; horizontalFlip?: number } = {};
  if (a.randomCrop !== undefined) {
    const c = a.randomCrop as Record<string, unknown>;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) fail(`augment.randomCrop must be { size, padding }, got ${JSON.stringify(c)}`);
    for (const k of Object.keys(c)) if (k !== 'size' && k !== 'padding') fail(`augment.randomCrop has an unknown option '${k}' (known: size, padding)`);
    const { size, padding = 0 } = c;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1) fail(`augment.randomCrop.size must be a positive integer, got ${JSON.stringify(size)}`);
    if (typeof padding !== 'number' || !Number.isInteger(padding) || padding < 0) fail(`augment.randomCrop.padding must be a non-negative integer, got ${JSON.stringify(padding)}`);
    out.randomCrop = { size: size as number, padding: padding as number };
  }
  if (a.horizontalFlip !== undefined) {
    const p = a.horizontalFlip;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) fail(`augment.horizontalFlip must be a probability from 0 to 1, got ${JSON.stringify(p)}`);
    out.horizontalFlip = p as number;
  }
  return out;
}

/** Checks a model file's `training` export and fills in the defaults. */
export function resolveTraining(raw: unknown, loc: SourceLoc): ResolvedTraining {
  const fail = (msg: string): never => {
    throw new KilnError('training-options', `training: ${msg}`, loc, 'see the `training` export in samples/simple-cnn.ts for the expected form');
  };
  if (raw === undefined) raw = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be an object');
  const t = raw as Record<string, unknown>;
  const known = ['input', 'dataset', 'batchSize', 'epochs', 'loss', 'optimizer', 'seed', 'normalize', 'augment'];
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
    ...(t.normalize === undefined ? {} : { normalize: resolveNormalize(t.normalize, fail) }),
    ...(t.augment === undefined ? {} : { augment: resolveAugment(t.augment, fail) }),
  };
}
