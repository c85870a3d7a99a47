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

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max, eta_min), stepped after every
 * batch. tMax defaults to the run's total steps.
 */
export interface CosineScheduleOptions {
  kind: 'cosine';
  tMax?: number;
  etaMin?: number;
}

/**
 * torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps, pct_start, anneal_strategy,
 * cycle_momentum, base_momentum, max_momentum, div_factor, final_div_factor, three_phase),
 * stepped after every batch. maxLr defaults to the optimizer's lr, totalSteps to the run's total
 * steps.
 */
export interface OneCycleScheduleOptions {
  kind: 'onecycle';
  maxLr?: number;
  totalSteps?: number;
  pctStart?: number;
  anneal?: 'cos' | 'linear';
  cycleMomentum?: boolean;
  baseMomentum?: number;
  maxMomentum?: number;
  divFactor?: number;
  finalDivFactor?: number;
  threePhase?: boolean;
}

export type ScheduleOptions = CosineScheduleOptions | OneCycleScheduleOptions;

/** A schedule with its defaults filled in; a total of undefined is the run's total steps. */
export type ResolvedSchedule =
  | { kind: 'cosine'; tMax: number | undefined; etaMin: number }
  | {
      kind: 'onecycle';
      /** undefined: the optimizer's lr. */
      maxLr: number | undefined;
      totalSteps: number | undefined;
      pctStart: number;
      anneal: 'cos' | 'linear';
      cycleMomentum: boolean;
      baseMomentum: number;
      maxMomentum: number;
      divFactor: number;
      finalDivFactor: number;
      threePhase: boolean;
    };

/** The `training` export of a model file. Every field has a default. */
export interface TrainingOptions {
  /** Shape of one example without the batch dimension, e.g. [1, 28, 28]; [T] (the context) for text. */
  input?: number[];
  /** 'mnist', a folder of IDX or CIFAR files, or 'text' (with `data`). */
  dataset?: string;
  /** dataset 'text': the UTF-8 file whose bytes are the tokens, relative to the model file. */
  data?: string;
  /** dataset 'text': the share of the file, from its end, held out for evaluation (default 0.1). */
  valFraction?: number;
  /** dataset 'text': steps of random windows per epoch (default: enough to cover the training bytes once). */
  stepsPerEpoch?: number;
  batchSize?: number;
  epochs?: number;
  loss?: 'crossEntropy';
  optimizer?: OptimizerOptions;
  /** A learning-rate schedule stepped after every batch; none keeps the optimizer's lr. */
  schedule?: ScheduleOptions;
  seed?: number;
  /** torchvision's Normalize: a mean and std per channel, or one of each for all (default MNIST's). */
  normalize?: { mean: number | number[]; std: number | number[] };
  /** torchvision's RandomCrop and RandomHorizontalFlip, applied to the training images each epoch. */
  augment?: { randomCrop?: { size: number; padding?: number }; horizontalFlip?: number };
}

/**
 * `schedule` rides with the optimizer because it changes the update's graph: a scheduled lr (and a
 * cycled momentum) is a per-step input there instead of a constant.
 */
export type ResolvedOptimizer = (
  | { type: 'sgd'; lr: number; momentum: number; nesterov: boolean; weightDecay: number }
  | { type: 'adam' | 'adamw'; lr: number; betas: [number, number]; eps: number; weightDecay: number }
) & { schedule?: ResolvedSchedule };

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
  data?: string;
  valFraction?: number;
  stepsPerEpoch?: number;
}

/**
 * PyTorch's defaults (torch.optim.lr_scheduler, 1.13). OneCycleLR cycles SGD's momentum between
 * maxMomentum and baseMomentum by default, as PyTorch does (whatever momentum the optimizer was
 * given); cycling Adam's beta1 is not implemented (its bias correction would need the beta1 of
 * every step), so Adam asks for cycleMomentum: false.
 */
export function resolveSchedule(raw: unknown, opt: { type: string }, fail: (msg: string) => never): ResolvedSchedule {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`schedule must be an object like { kind: 'cosine' }, got ${JSON.stringify(raw)}`);
  const s = raw as Record<string, unknown>;
  const known = s.kind === 'cosine' ? ['kind', 'tMax', 'etaMin'] : s.kind === 'onecycle' ? ['kind', 'maxLr', 'totalSteps', 'pctStart', 'anneal', 'cycleMomentum', 'baseMomentum', 'maxMomentum', 'divFactor', 'finalDivFactor', 'threePhase'] : undefined;
  if (!known) return fail(`schedule.kind must be 'cosine' or 'onecycle', got ${JSON.stringify(s.kind)}`);
  for (const k of Object.keys(s)) if (!known.includes(k)) fail(`schedule has an unknown option '${k}' for kind '${String(s.kind)}' (known: ${known.join(', ')})`);
  const number = (k: string, dflt: number, ok: (v: number) => boolean, what: string): number => {
    const v = s[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(`schedule.${k} must be ${what}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const total = (k: string): number | undefined => (s[k] === undefined ? undefined : number(k, 0, (v) => Number.isInteger(v) && v >= 1, 'a positive integer'));
  const flag = (k: string, dflt: boolean): boolean => {
    const v = s[k] ?? dflt;
    if (typeof v !== 'boolean') fail(`schedule.${k} must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  if (s.kind === 'cosine') return { kind: 'cosine', tMax: total('tMax'), etaMin: number('etaMin', 0, (v) => v >= 0, 'a non-negative number') };
  const anneal = s.anneal ?? 'cos';
  if (anneal !== 'cos' && anneal !== 'linear') fail(`schedule.anneal must be 'cos' or 'linear', got ${JSON.stringify(anneal)}`);
  const cycleMomentum = flag('cycleMomentum', true);
  if (cycleMomentum && opt.type !== 'sgd') fail(`schedule.cycleMomentum (cycling ${opt.type}'s beta1) is not supported by kiln; set cycleMomentum: false`);
  const baseMomentum = number('baseMomentum', 0.85, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  const maxMomentum = number('maxMomentum', 0.95, (v) => v >= 0 && v < 1, 'a number in [0, 1)');
  return {
    kind: 'onecycle',
    maxLr: s.maxLr === undefined ? undefined : number('maxLr', 0, (v) => v >= 0, 'a non-negative number'),
    totalSteps: total('totalSteps'),
    pctStart: number('pctStart', 0.3, (v) => v >= 0 && v <= 1, 'a number in [0, 1]'),
    anneal: anneal as 'cos' | 'linear',
    cycleMomentum,
    baseMomentum,
    maxMomentum,
    divFactor: number('divFactor', 25, (v) => v > 0, 'a positive number'),
    finalDivFactor: number('finalDivFactor', 1e4, (v) => v > 0, 'a positive number'),
    threePhase: flag('threePhase', false),
  };
}

/** PyTorch's defaults (torch.optim, 2.x; SGD has lr=1e-3 there). */
export function resolveOptimizer(o: OptimizerOptions | undefined, fail: (msg: string) => never, schedule?: unknown): ResolvedOptimizer {
  const opt = resolveUnscheduled(o, fail);
  return schedule === undefined ? opt : { ...opt, schedule: resolveSchedule(schedule, opt, fail) };
}

function resolveUnscheduled(o: OptimizerOptions | undefined, fail: (msg: string) => never): ResolvedOptimizer {
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
  const known = ['input', 'dataset', 'data', 'batchSize', 'epochs', 'loss', 'optimizer', 'schedule', 'seed', 'normalize', 'augment', 'valFraction', 'stepsPerEpoch'];
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
  for (const k of ['data', 'valFraction', 'stepsPerEpoch']) if (t[k] !== undefined && dataset !== 'text') fail(`${k} applies to dataset 'text', not ${JSON.stringify(dataset)}`);
  if (t.data !== undefined && (typeof t.data !== 'string' || t.data === '')) fail(`data must be the path of a text file, got ${JSON.stringify(t.data)}`);
  const valFraction = t.valFraction;
  if (valFraction !== undefined && (typeof valFraction !== 'number' || !(valFraction > 0 && valFraction < 1))) fail(`valFraction must be a number between 0 and 1 (exclusive), got ${JSON.stringify(valFraction)}`);
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
    optimizer: resolveOptimizer(t.optimizer as OptimizerOptions | undefined, fail, t.schedule),
    seed: seed as number,
    ...(t.normalize === undefined ? {} : { normalize: resolveNormalize(t.normalize, fail) }),
    ...(t.augment === undefined ? {} : { augment: resolveAugment(t.augment, fail) }),
    ...(t.data === undefined ? {} : { data: t.data as string }),
    ...(valFraction === undefined ? {} : { valFraction: valFraction as number }),
    ...(t.stepsPerEpoch === undefined ? {} : { stepsPerEpoch: positiveInt('stepsPerEpoch', 1) }),
  };
}
