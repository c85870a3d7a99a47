import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, relative, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { KilnError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { precompiledFor } from '../frontend/bundle.ts';
import { loadModelFile, whileChecking, type LoadedModel } from '../frontend/loader.ts';
import type { Graph } from '../ir/graph.ts';
import type { Program } from '../ir/program.ts';
import type { Target } from '../ir/target.ts';
import { resolveOptimizer, type ResolvedTraining } from '../frontend/training-options.ts';
import { batchOf, exampleSizeOf, memoizeSteps, type Backend, type StepSource } from '../runtime/backend.ts';
import { checkAugment, type Augment } from '../runtime/data/augment.ts';
import { MNIST_NORMALIZE, type LoadOptions, type Normalize } from '../runtime/data/dataset.ts';
import { loadDataset } from '../runtime/data/dataset-file.ts';
import type { TrainData } from '../runtime/data/feed.ts';
import { DEFAULT_VAL_FRACTION, isText, TEXT_VOCAB, validValFraction, type TextDataset } from '../runtime/data/text.ts';
import { loadTextDataset } from '../runtime/data/text-file.ts';
import { initDraws, initialState } from '../runtime/init.ts';
import { ReferenceBackend } from '../runtime/reference/backend.ts';
import { createWasmBackend, preloadWasmBackend } from '../runtime/wasm/compile.ts';
import type { StepCache } from '../runtime/wasm/step-cache.ts';
import { compileProgram } from '../passes/compile.ts';
import { diagnoseNonFinite } from '../runtime/check-numerics.ts';
import type { TrainConfig } from '../runtime/trainer.ts';
import { graphFor } from './graphs.ts';
import { lastPositionGraph } from '../passes/last-position.ts';
import { BACKENDS } from './flags.ts';
import { choice, flipFlag, nonNegInt, nonNegNumber, normalizeFlag, positiveInt, randomCropFlag } from './options.ts';

/** Flags shared by `train` and `eval`; each overrides the model file's `training` export. */
export interface SessionFlags {
  data?: string;
  /** Text: the share of the file held out for evaluation. */
  valFraction?: string;
  normalize?: string;
  labels?: string;
  randomCrop?: string;
  horizontalFlip?: string | true;
  batchSize?: string;
  epochs?: string;
  lr?: string;
  optimizer?: string;
  momentum?: string;
  weightDecay?: string;
  schedule?: string;
  seed?: string;
  backend?: string;
  /** Threads for the wasm backend (default: the number of cores). */
  threads?: string;
}

export interface Session {
  loaded: LoadedModel;
  training: ResolvedTraining;
  data: TrainData;
  normalize: Normalize;
  backend: Backend;
  /** Parameters and buffers: what a state_dict holds. */
  modelState: string[];
  /** Draws initialisation takes from the seed's generator; the data order follows them. */
  initDraws: number;
  /** --check-numerics: explains a training step after which a value was not finite. */
  checkNumerics: NonNullable<TrainConfig['checkNumerics']>;
}

/**
 * Checks every flag's value on its own, before the model or the data is loaded: a typo is told in
 * a fraction of a second, not after the linter and the tracer ran. mergeFlags then checks how the
 * flags combine with the model's `training` (--momentum with Adam).
 */
export function checkSessionFlags(f: SessionFlags): void {
  if (f.optimizer !== undefined) choice('--optimizer', f.optimizer, ['sgd', 'adam', 'adamw']);
  if (f.schedule !== undefined) choice('--schedule', f.schedule, ['cosine', 'onecycle', 'none']);
  for (const [flag, v] of [['--lr', f.lr], ['--momentum', f.momentum], ['--weight-decay', f.weightDecay]] as const) if (v !== undefined) nonNegNumber(flag, v);
  for (const [flag, v] of [['--batch-size', f.batchSize], ['--epochs', f.epochs]] as const) if (v !== undefined) positiveInt(flag, v);
  if (f.seed !== undefined) nonNegInt('--seed', f.seed);
  if (f.normalize !== undefined) normalizeFlag('--normalize', f.normalize);
  if (f.labels !== undefined) choice('--labels', f.labels, LABELS);
  if (f.randomCrop !== undefined) randomCropFlag('--random-crop', f.randomCrop);
  if (f.horizontalFlip !== undefined) flipFlag('--horizontal-flip', f.horizontalFlip);
  if (f.valFraction !== undefined) valFractionFlag(f.valFraction);
}

/** --val-fraction F: the share of a text file, from its end, held out for evaluation. */
function valFractionFlag(v: string): number {
  const f = Number(v);
  if (v.trim() === '' || !validValFraction(f)) throw new KilnError('usage', `--val-fraction must be a number between 0 and 1 (exclusive); got '${v}'`, undefined, 'e.g. --val-fraction 0.1 (the default): the last 10% of the text is held out');
  return f;
}

/**
 * Whether --data names text: anything but a folder (or "mnist") that ends in .txt, or whatever the
 * name when the model's dataset is 'text'. A missing file counts, so that its message is about a
 * text file rather than a dataset folder.
 */
function isTextData(data: string, fileDataset: string): boolean {
  if (data === 'mnist' || (existsSync(data) && statSync(data).isDirectory())) return false;
  return extname(data).toLowerCase() === '.txt' || fileDataset === 'text';
}

const LABELS = ['fine', 'coarse'] as const;

/** What --labels asks of the data (CIFAR-100's fine or coarse classes), for loadDataset. */
export function labelsFlag(f: Pick<SessionFlags, 'labels'>): LoadOptions['labels'] {
  return f.labels === undefined ? undefined : choice('--labels', f.labels, LABELS);
}

export function mergeFlags(t: ResolvedTraining, f: SessionFlags): ResolvedTraining {
  const { schedule: fileSchedule, ...resolved } = t.optimizer;
  const opt: Record<string, unknown> = { ...resolved };
  if (f.optimizer !== undefined) {
    const type = choice('--optimizer', f.optimizer, ['sgd', 'adam', 'adamw']);
    if (type !== opt.type) for (const k of Object.keys(opt)) if (k !== 'lr') delete opt[k];
    opt.type = type;
  }
  if (f.lr !== undefined) opt.lr = nonNegNumber('--lr', f.lr);
  if (f.momentum !== undefined) {
    // A flag that would change nothing is refused, not ignored: Adam has no momentum setting.
    if (opt.type !== 'sgd') throw new KilnError('usage', `--momentum applies to SGD; this run's optimizer is ${String(opt.type)}`, undefined, 'add --optimizer sgd, or drop --momentum (Adam\'s betas play its part)');
    opt.momentum = nonNegNumber('--momentum', f.momentum);
  }
  if (f.weightDecay !== undefined) opt.weightDecay = nonNegNumber('--weight-decay', f.weightDecay);
  if (opt.type !== 'sgd') delete opt.momentum, delete opt.nesterov;
  // --schedule KIND keeps the model file's settings when it names the same kind; none drops them.
  const kind = f.schedule === undefined ? fileSchedule?.kind : choice('--schedule', f.schedule, ['cosine', 'onecycle', 'none']);
  const schedule = kind === undefined || kind === 'none' ? undefined : kind === fileSchedule?.kind ? fileSchedule : { kind };
  const optimizer = resolveOptimizer(
    opt as never,
    (msg) => {
      throw new KilnError('usage', msg);
    },
    schedule,
  );
  return {
    ...t,
    optimizer,
    batchSize: f.batchSize === undefined ? t.batchSize : positiveInt('--batch-size', f.batchSize),
    epochs: f.epochs === undefined ? t.epochs : positiveInt('--epochs', f.epochs),
    seed: f.seed === undefined ? t.seed : nonNegInt('--seed', f.seed),
    ...dataFlag(t, f.data),
    ...(f.valFraction === undefined ? {} : { valFraction: valFractionFlag(f.valFraction) }),
    ...(f.normalize === undefined ? {} : { normalize: normalizeFlag('--normalize', f.normalize) }),
    ...mergeAugment(t.augment, f),
  };
}

/**
 * --data over the model's dataset: text (dataset 'text', `data` the file as given, relative to
 * the working directory like every path on the command line) or an image dataset.
 */
function dataFlag(t: ResolvedTraining, data: string | undefined): Pick<ResolvedTraining, 'dataset' | 'data'> {
  if (data === undefined) return { dataset: t.dataset, ...(t.data === undefined ? {} : { data: t.data }) };
  return isTextData(data, t.dataset) ? { dataset: 'text', data } : { dataset: data };
}

/** The model's augmentation with each flag given overriding its part; absent when nothing augments. */
function mergeAugment(a: Augment | undefined, f: SessionFlags): { augment?: Augment } {
  if (f.randomCrop === undefined && f.horizontalFlip === undefined) return a ? { augment: a } : {};
  return {
    augment: {
      ...a,
      ...(f.randomCrop === undefined ? {} : { randomCrop: randomCropFlag('--random-crop', f.randomCrop) }),
      ...(f.horizontalFlip === undefined ? {} : { horizontalFlip: flipFlag('--horizontal-flip', f.horizontalFlip) }),
    },
  };
}

/** The backend named by --backend over a model's steps (see openSession). */
export async function openBackend(
  name: string,
  steps: StepSource,
  initial: Map<string, Float32Array>,
  batchSize: number,
  seed: number,
  opts: { threads?: number; lower: Lower; cache?: StepCache },
): Promise<Backend> {
  if (name === 'wasm') return createWasmBackend(steps, initial, batchSize, seed, opts);
  if (name === 'webgpu') return openWebGpu(steps, initial, batchSize, seed, opts.lower);
  return new ReferenceBackend(steps, initial, batchSize, seed, { lower: opts.lower });
}

/** The webgpu backend on the best adapter, loaded only when asked for (Dawn is a native addon); says which adapter. */
async function openWebGpu(steps: StepSource, initial: Map<string, Float32Array>, batchSize: number, seed: number, lower: Lower): Promise<Backend> {
  const { openWebGpuBackend } = await import('../runtime/webgpu/compile.ts');
  const b = await openWebGpuBackend(steps, initial, batchSize, seed, { lower });
  process.stderr.write(`kiln: webgpu adapter: ${b.description}${b.software ? ' — a software rasterizer: correct but slow' : ''}\n`);
  return b;
}

/** Graph -> Program for a backend's target. */
export type Lower = (g: Graph, target: Target) => Program;

/**
 * A bundle's precompiled Program for that step when the optimizer settings are the ones it was
 * compiled with (their values are baked into the update kernels) and one was compiled within the
 * backend's limits (src/cli/compile.ts: one for wasm, one for any WebGPU adapter). Else the
 * passes, for the backend's target.
 */
export function lowerFor(loaded: LoadedModel, training: ResolvedTraining): Lower {
  const compiled = loaded.compiled;
  const same = compiled !== undefined && JSON.stringify(training.optimizer) === JSON.stringify(loaded.training.optimizer);
  return (g, target) => (same ? precompiledFor(compiled, target, g.stage, g.batchSize) : undefined) ?? compileProgram(g, target);
}

/**
 * Traces the step of an epoch's short last batch now, so that a model it does not fit (batch norm
 * over a single example, as in PyTorch) fails before training rather than at the end of an epoch.
 */
function traceLastBatch(steps: StepSource, count: number, batchSize: number): void {
  const last = count % batchSize;
  if (last === 0 || count < batchSize) return;
  try {
    steps.train(last);
  } catch (e) {
    if (!(e instanceof KilnError)) throw e;
    const hint = `choose a --batch-size that leaves a last batch of 2 or more (e.g. ${suggestBatch(count, batchSize)})`;
    throw new KilnError(e.code, `the last batch of each epoch holds ${last} of the ${count.toLocaleString('en-US')} images (batch ${batchSize}): ${e.message}`, e.loc, hint);
  }
}

/** The nearest batch size below `batchSize` whose last batch is not a single example. */
function suggestBatch(count: number, batchSize: number): number {
  for (let b = batchSize - 1; b > 1; b--) if (count % b !== 1) return b;
  return 2;
}

/** The textbook's test loader batch: every evaluation step runs at this size. */
export const EVAL_BATCH = 1000;

/** What any backend holds at most: WebAssembly's 4 GiB memory, and the typed arrays a host allocates the state in. */
const MAX_STATE_BYTES = 4 * 2 ** 30;

/**
 * A model whose parameters, buffers and optimizer state cannot be held at all is the user's
 * problem to hear about before anything is allocated (a 10^10-parameter Linear otherwise ended in
 * "Invalid typed array length", reported as a kiln bug).
 */
function checkStateFits(loaded: LoadedModel, first: Graph): void {
  const bytes = first.state.reduce((a, s) => a + 4 * s.shape.reduce((p, d) => p * d, 1), 0);
  if (bytes <= MAX_STATE_BYTES) return;
  const params = first.state.filter((s) => s.kind === 'param').reduce((a, s) => a + s.shape.reduce((p, d) => p * d, 1), 0);
  throw new KilnError('resources', `${loaded.file}: ${params.toLocaleString('en-US')} parameters with their optimizer state need ${(bytes / 2 ** 30).toFixed(1)} GiB; kiln holds at most 4 GiB (WebAssembly's memory limit)`, undefined, 'make the model smaller (fewer features or channels in its largest layers)');
}

/** Fails, naming the mismatch, unless the model takes the data's images or windows and outputs its classes, and its epoch's short last batch traces. */
export function checkModelFitsData(loaded: LoadedModel, first: Graph, data: TrainData, steps: StepSource, training: ResolvedTraining): void {
  if (isText(data)) return checkModelFitsText(loaded, first, data, training);
  traceLastBatch(steps, data.train.count, training.batchSize);
  checkAugment(training.augment, data.imageShape, data.name);
  const inputShape = loaded.training.input;
  if (fmtShape(inputShape) !== fmtShape(data.imageShape)) {
    throw new KilnError('data', `${loaded.file} expects inputs of shape ${fmtShape(inputShape)} but ${data.name} has images of shape ${fmtShape(data.imageShape)}`, undefined, 'set training.input in the model file to the dataset image shape');
  }
  const classes = first.nodes[first.outputs.logits!]!.shape;
  // A label past the model's classes is most often one bad label: name it, not a class count.
  const bad = classes.length === 2 ? data.train.labels.findIndex((l) => l >= classes[1]!) : -1;
  if (bad >= 0 && classes[1]! >= 2) {
    throw new KilnError('data', `training label ${data.train.labels[bad]} at ${data.trainLabelAt?.(bad) ?? `index ${bad} of ${data.name}`} is out of range for ${loaded.file}, which outputs ${classes[1]} classes (labels 0..${classes[1]! - 1})`, undefined, 'fix the labels file, or make the last layer output as many values as there are classes');
  }
  if (classes.length !== 2 || classes[1] !== data.numClasses) {
    throw new KilnError('data', `${loaded.file} outputs logits of shape ${fmtShape(classes)} but ${data.name} has ${data.numClasses} classes`, undefined, `make the last layer output ${data.numClasses} values per example`);
  }
  if (classes[0] !== training.batchSize) {
    throw new KilnError('data', `${loaded.file} outputs logits of shape ${fmtShape(classes)} for a batch of ${training.batchSize}: a row per image is needed`, undefined, `return logits of shape [batch, ${data.numClasses}]`);
  }
}

/** A language model of text: input [T], logits [B·T, 256] (a row per position, as logits.view(-1, 256)). */
function checkModelFitsText(loaded: LoadedModel, first: Graph, data: TextDataset, training: ResolvedTraining): void {
  const input = loaded.training.input;
  if (input.length !== 1) {
    throw new KilnError('data', `${loaded.file} expects inputs of shape ${fmtShape(input)}, but text data is windows of bytes: training.input must be [T], the context length`, undefined, 'set training.input to [T], e.g. [64]; the model then gets x of shape [batch, T] (byte values 0..255)');
  }
  const logits = first.nodes[first.outputs.logits!]!.shape;
  const rows = training.batchSize * data.context;
  if (logits.length !== 2 || logits[0] !== rows || logits[1] !== TEXT_VOCAB) {
    throw new KilnError('data', `${loaded.file} outputs logits of shape ${fmtShape(logits)}, but text of batch ${training.batchSize} and context ${data.context} needs [${rows}, ${TEXT_VOCAB}]: a score for each of the 256 byte values at every position`, undefined, `return logits.view(-1, ${TEXT_VOCAB}) of logits [batch, T, ${TEXT_VOCAB}]`);
  }
}

/**
 * The session's data: the text file (--data FILE.txt, or training.data relative to the model
 * file) or an image dataset. Image-only options on text, and text-only ones on images, are
 * refused rather than ignored.
 */
function loadData(loaded: LoadedModel, training: ResolvedTraining, flags: SessionFlags): TrainData {
  const textOnly = [training.valFraction !== undefined && (flags.valFraction === undefined ? 'training.valFraction' : '--val-fraction'), training.stepsPerEpoch !== undefined && 'training.stepsPerEpoch'].filter((w): w is string => typeof w === 'string');
  if (training.dataset !== 'text') {
    if (textOnly.length) throw new KilnError('usage', `${textOnly.join(' and ')} appl${textOnly.length > 1 ? 'y' : 'ies'} to text data, but this run trains on ${training.dataset}`, undefined, `drop ${textOnly.join(' and ')}, or train on a text file: --data FILE.txt`);
    return loadDataset(training.dataset, { ...(training.normalize ? { normalize: training.normalize } : {}), labels: labelsFlag(flags) });
  }
  const imageOnly = [[training.normalize, 'normalize'], [training.augment, 'augmentation'], [flags.labels, '--labels']].filter(([v]) => v !== undefined).map(([, w]) => w as string);
  if (imageOnly.length) throw new KilnError('usage', `${imageOnly.join(', ')}: image options, but this run trains on text`, undefined, 'drop them: text is bytes, neither normalised nor augmented');
  const path = flags.data ?? (training.data === undefined ? undefined : relative(process.cwd(), resolve(dirname(loaded.file), training.data)) || training.data);
  if (path === undefined) throw new KilnError('usage', `${loaded.file}: training.dataset is 'text' but no file is named`, undefined, "set training.data to the text file (relative to the model file), or pass --data FILE.txt");
  return loadTextDataset(path, { context: loaded.training.input[0]!, valFraction: training.valFraction ?? DEFAULT_VAL_FRACTION });
}

/**
 * Every evaluation step runs at this batch: the textbook's 1000 images, or the training batch of
 * windows for text (1000 windows of a language model's logits, [1000·T, 256], would not fit).
 */
export function evalBatchFor(training: ResolvedTraining): number {
  return training.dataset === 'text' ? training.batchSize : EVAL_BATCH;
}

/**
 * --threads: the wasm backend's only. More threads than cores only wait on each other at every
 * barrier (1000 of them never finished a step), so the count is capped at the cores, saying so;
 * results are bitwise the same at any count.
 */
export function threadCount(flag: string | undefined, backend: string): number | undefined {
  if (flag === undefined) return undefined;
  if (backend !== 'wasm') throw new KilnError('usage', `--threads applies to the wasm backend, not ${backend}`, undefined, 'drop --threads, or train with --backend wasm');
  const n = positiveInt('--threads', flag);
  const cores = availableParallelism();
  if (n <= cores) return n;
  process.stderr.write(`kiln: --threads ${n} is more than this machine's ${cores} cores; using ${cores} (more threads would only wait on each other)\n`);
  return cores;
}

/** What is known of a session once its model and data are loaded and checked, before its backend starts. */
export interface SessionPlan {
  loaded: LoadedModel;
  training: ResolvedTraining;
  data: TrainData;
  backend: string;
}

/** The model file's bytes, for the step cache's guess (empty when unreadable: loading it reports that). */
function modelBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch {
    return new Uint8Array();
  }
}

export interface SessionHooks {
  /** Runs before the backend starts (binaryen and worker threads, about half a second for wasm), so that `kiln train` can say what it is about to do that much sooner. */
  onPlanned?: (plan: SessionPlan) => void;
  /** Runs when the model file is about to be type-checked (not when lint-cache.ts knows it passed). */
  onLint?: (file: string) => void;
  /** Keep the wasm backend's built modules between runs (the caller then awaits `Backend.prepare` for every step it runs). */
  stepCache?: StepCache;
  /**
   * A language model's evaluation step at batch 1 is generation's: the logits of the window's
   * last position only (lastPositionGraph). For `kiln bench`, whose batch-1 step is a generation
   * step; never for training, whose evaluation reads every position.
   */
  generation?: boolean;
  /**
   * Return with the model's checks still running on a worker (`loaded.checked`), for a caller that
   * awaits them itself once its own start-up work (building the steps) is done. Default: the
   * session opens only after they pass.
   */
  checkAside?: boolean;
}

/** Loads the model and the data, checks they fit each other, and starts a backend with fresh weights. */
export async function openSession(modelPath: string, flags: SessionFlags, hooks: SessionHooks = {}): Promise<Session> {
  const { onLint, stepCache } = hooks;
  const backendName = choice('--backend', flags.backend ?? BACKENDS[0], BACKENDS);
  const threads = threadCount(flags.threads, backendName);
  checkSessionFlags(flags);
  // binaryen is imported alongside loading the model, unless the modules will be read back.
  if (backendName === 'wasm' && !stepCache?.builtFrom(modelBytes(modelPath))) preloadWasmBackend();
  // The checks run on a worker while the model is traced and its backend started; a failure in
  // between waits for them, whose error (where they find one) says more about the same mistake.
  const loaded = await loadModelFile(modelPath, { onLint, lintAside: true });
  return whileChecking(loaded, () => startSession(loaded, modelPath, backendName, threads, flags, hooks), { undo: (s) => s.backend.dispose(), awaitChecks: !hooks.checkAside });
}

async function startSession(loaded: LoadedModel, modelPath: string, backendName: string, threads: number | undefined, flags: SessionFlags, hooks: SessionHooks): Promise<Session> {
  const { onPlanned, stepCache, generation } = hooks;
  const training = mergeFlags(loaded.training, flags);
  const data = loadData(loaded, training, flags);
  // The dataset's own default when neither the flag nor the model file gives one (text has none to apply).
  const normalize = isText(data) ? MNIST_NORMALIZE : data.normalize;
  const steps = memoizeSteps({
    train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: training.optimizer }),
    eval: (b) => {
      const g = graphFor(loaded, 'eval', { batchSize: b, optimizer: training.optimizer });
      return generation && b === 1 && isText(data) ? lastPositionGraph(g) : g;
    },
  });
  const first = steps.train(training.batchSize);
  checkModelFitsData(loaded, first, data, steps, training);
  checkStateFits(loaded, first);
  onPlanned?.({ loaded, training, data, backend: backendName });
  // Every backend, the reference included, runs the compiled Program.
  const initial = initialState(first.state, training.seed);
  // The Program the backend runs for each step, kept for --check-numerics to replay.
  const programs = new Map<string, Program>();
  const lowerProgram = lowerFor(loaded, training);
  const lower: Lower = (g, target) => {
    const p = lowerProgram(g, target);
    programs.set(`${g.stage}/${g.batchSize}`, p);
    return p;
  };
  const backend = await openBackend(backendName, steps, initial, training.batchSize, training.seed, { threads, lower, cache: stepCache });
  if (backendName === 'wasm') stepCache?.markBuiltFrom(modelBytes(modelPath));
  const modelState = first.state.filter((s) => s.kind !== 'optim').map((s) => s.name);
  const checkNumerics: Session['checkNumerics'] = (place, feeds, before, seen) => {
    const graph = steps.train(batchOf(feeds.x, exampleSizeOf(first)));
    return diagnoseNonFinite({ graph, program: programs.get(`train/${graph.batchSize}`), seed: training.seed, before, feeds }, place, seen);
  };
  return { loaded, training, data, normalize, backend, modelState, initDraws: initDraws(first.state), checkNumerics };
}
