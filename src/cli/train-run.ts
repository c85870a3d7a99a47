import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { syncState, type Backend } from '../runtime/backend.ts';
import { augmentIdentity, type RunIdentity, type TrainPosition } from '../runtime/checkpoint.ts';
import { loadCheckpoint, loadWeights, saveCheckpoint, saveWeights } from '../runtime/checkpoint-file.ts';
import type { Augment } from '../runtime/data/augment.ts';
import type { Normalize } from '../runtime/data/dataset.ts';
import { evalFeed, type TrainData } from '../runtime/data/feed.ts';
import { bitsPerByte, defaultStepsPerEpoch, isText, type TextDataset } from '../runtime/data/text.ts';
import { checkWritable, writeFileAtomic } from '../runtime/output-file.ts';
import { decodeSafetensors } from '../runtime/safetensors.ts';
import { readSafetensorsBytes } from '../runtime/safetensors-file.ts';
import { feedSteps, train, trainFeed, type TrainConfig, type TrainResult } from '../runtime/trainer.ts';
import type { ResolvedOptimizer } from '../frontend/training-options.ts';
import { nonNegInt, positiveInt } from './options.ts';
import { progressHooks, type RunUnits } from './progress.ts';

/** The flags of `kiln train` and of a standalone bundle's train.mjs that shape the run, not the model. */
export interface RunFlags {
  maxSteps?: string;
  shuffle: boolean;
  init?: string;
  save?: string;
  checkpoint?: string;
  checkpointEvery?: string;
  resume?: string;
  log?: string;
  metricsJson?: string;
}

/** A model on a backend with its data, ready to train: from `kiln train`'s session or a standalone bundle. */
export interface TrainRun {
  name: string;
  /** The model file (or bundle) as the user named it. */
  file: string;
  backend: Backend;
  data: TrainData;
  training: { batchSize: number; epochs: number; seed: number; optimizer: ResolvedOptimizer; stepsPerEpoch?: number };
  normalize: Normalize;
  /** Training-set augmentation, if any. */
  augment?: Augment;
  initDraws: number;
  evalBatchSize: number;
  /** Parameters and buffers: what a state_dict holds. */
  modelState: string[];
  /** How the steps came to be ready: 'compiled' (kiln) or 'loaded' (a standalone bundle). */
  prepared: 'compiled' | 'loaded';
  /** The command that resumes this run, up to its flags (`kiln train m.ts`, `node dir/train.mjs`). */
  command: string;
  /** --check-numerics, where the run has the graphs to explain a step with (not a standalone bundle). */
  checkNumerics?: TrainConfig['checkNumerics'];
  /** Set when the caller has written the header already (trainHeader), as early as it could. */
  headerWritten?: boolean;
  /** The model's checks, still running while the steps are built: awaited before the first step. */
  checked?: Promise<void>;
}

/** The run's first line: what is trained on what, and how. */
export function trainHeader(run: { name: string; file: string; data: TrainData; training: TrainRun['training']; augment?: Augment }, backend: string): string {
  const { training: t, data } = run;
  const what = isText(data) ? textWords(data, t) : `${data.train.count.toLocaleString('en-US')} images${augmentWords(run.augment)}`;
  return `kiln: training ${run.name} (${run.file}) on ${data.name}: ${what}, batch ${t.batchSize}, ${t.epochs} epoch${t.epochs > 1 ? 's' : ''}, ${t.optimizer.type} lr ${t.optimizer.lr}${scheduleWords(t.optimizer)}, seed ${t.seed}, backend ${backend}\n`;
}

/** Text as the header says it: "9,000 bytes (1,000 held out), context 8, 281 steps per epoch". */
function textWords(data: TextDataset, t: TrainRun['training']): string {
  const steps = t.stepsPerEpoch ?? defaultStepsPerEpoch(data.train.length, t.batchSize, data.context);
  return `${data.train.length.toLocaleString('en-US')} bytes (${data.val.length.toLocaleString('en-US')} held out), context ${data.context}, ${steps.toLocaleString('en-US')} step${steps > 1 ? 's' : ''} per epoch`;
}

/** How the run's numbers read. */
function unitsOf(data: TrainData): RunUnits {
  return isText(data) ? { kind: 'text', context: data.context } : { kind: 'images' };
}

/** The run's last stdout line's result: test accuracy and loss, or for text the held-out loss in bits per byte. */
function resultWords(r: TrainResult, units: RunUnits): string {
  const rate = units.kind === 'text' ? `${Math.round(r.imagesPerSec * units.context).toLocaleString('en-US')} tokens/s` : `${Math.round(r.imagesPerSec).toLocaleString('en-US')} images/s`;
  const result = units.kind === 'text' ? `val loss ${r.testLoss.toFixed(4)}, ${bitsPerByte(r.testLoss).toFixed(4)} bits per byte` : `test accuracy ${(100 * r.testAccuracy).toFixed(2)}%, test loss ${r.testLoss.toFixed(4)}`;
  return `(${rate} training); ${result}`;
}

/** --metrics-json: images report test accuracy and images/s; text its held-out loss, bits per byte and tokens/s. */
function metrics(r: TrainResult, units: RunUnits, backend: string): object {
  const { trainLoss, testLoss, testAccuracy, imagesPerSec, seconds, steps, epochs } = r;
  if (units.kind === 'images') return { backend, epochs, steps, trainLoss, testLoss, testAccuracy, imagesPerSec, seconds };
  return { backend, epochs, steps, trainLoss, valLoss: testLoss, valBitsPerByte: bitsPerByte(testLoss), tokensPerSec: imagesPerSec * units.context, seconds };
}

/** The augmentation as the header says it: " (random crop 32 padding 4, flip 0.5)". */
function augmentWords(a: Augment | undefined): string {
  const words = [a?.randomCrop && `random crop ${a.randomCrop.size} padding ${a.randomCrop.padding}`, a?.horizontalFlip && `flip ${a.horizontalFlip}`].filter((w) => w);
  return words.length ? ` (${words.join(', ')})` : '';
}

/** The schedule as the header says it: ", cosine to 0 over 4,690 steps", ", one-cycle to max lr 0.1". */
function scheduleWords(o: ResolvedOptimizer): string {
  const s = o.schedule;
  if (!s) return '';
  if (s.kind === 'cosine') return `, cosine schedule to ${s.etaMin}${s.tMax === undefined ? '' : ` over ${s.tMax.toLocaleString('en-US')} steps`}`;
  return `, one-cycle schedule (max lr ${s.maxLr ?? o.lr}, ${s.anneal}${s.cycleMomentum ? `, momentum ${s.maxMomentum}–${s.baseMomentum}` : ''})`;
}

const checked = new WeakSet<RunFlags>();

/** Checks the output paths before any long work, so a typo does not cost a training run. */
export function checkRunFlags(flags: RunFlags): void {
  // kiln train checks before opening its session, runTraining again for train.mjs: once is enough.
  if (checked.has(flags)) return;
  checked.add(flags);
  if (flags.init && flags.resume) throw new KilnError('usage', '--init and --resume cannot be combined', undefined, '--resume restores the weights too');
  if (flags.checkpointEvery && !flags.checkpoint) throw new KilnError('usage', '--checkpoint-every needs --checkpoint FILE');
  if (flags.maxSteps !== undefined) nonNegInt('--max-steps', flags.maxSteps);
  if (flags.checkpointEvery !== undefined) positiveInt('--checkpoint-every', flags.checkpointEvery);
  for (const [flag, path] of [['--save', flags.save], ['--checkpoint', flags.checkpoint], ['--log', flags.log], ['--metrics-json', flags.metricsJson]] as const) if (path) checkWritable(flag, path);
  if (flags.init) checkSafetensorsFile(flags.init, 'weights file');
  if (flags.resume) checkSafetensorsFile(flags.resume, 'checkpoint');
}

/**
 * Reads and decodes a weights file or checkpoint before the model, the data and the backend are
 * loaded, so a missing or damaged one is told at once; matching it against the model comes
 * later. The file is read again then: a second read of weights costs far less than the
 * compile a typo would otherwise waste.
 */
export function checkSafetensorsFile(path: string, what: 'weights file' | 'checkpoint'): void {
  decodeSafetensors(readSafetensorsBytes(path, what), path);
}

/**
 * The training run both commands share: weights or a checkpoint to start from, the header,
 * preparing every step, the progress display, Ctrl-C (finish the step, checkpoint, exit 130),
 * and the files asked for. Same lines and files from `kiln train` and `node train.mjs`.
 */
export async function runTraining(run: TrainRun, flags: RunFlags): Promise<void> {
  checkRunFlags(flags);
  const maxSteps = flags.maxSteps === undefined ? undefined : nonNegInt('--max-steps', flags.maxSteps);
  const every = flags.checkpointEvery === undefined ? undefined : positiveInt('--checkpoint-every', flags.checkpointEvery);
  const { training: t, backend, data } = run;
  const cfg = { epochs: t.epochs, batchSize: t.batchSize, seed: t.seed, shuffle: flags.shuffle, initDraws: run.initDraws, normalize: run.normalize, augment: run.augment, stepsPerEpoch: t.stepsPerEpoch };
  const feed = trainFeed(data, cfg);
  const evaluation = evalFeed(data, run.evalBatchSize, run.normalize);
  const units = unitsOf(data);
  // Text adds what shapes its batches beyond the training bytes: the windows and the steps per epoch.
  const text = isText(data) ? { context: data.context, stepsPerEpoch: feed.batches } : {};
  const identity: RunIdentity = { model: run.name, seed: t.seed, shuffle: flags.shuffle, batchSize: t.batchSize, trainCount: isText(data) ? data.train.length : data.train.count, optimizer: JSON.stringify(t.optimizer), augment: augmentIdentity(run.augment), ...text };
  let start: TrainPosition = { step: 0, epoch: 0, batch: 0 };
  if (flags.init) loadWeights(flags.init, backend, run.modelState);
  if (flags.resume) start = loadCheckpoint(flags.resume, backend, identity);
  const checkpointPath = flags.checkpoint ?? `${basename(run.file).replace(/\.[^.]+$/, '')}.checkpoint.safetensors`;
  const save = (p: TrainPosition) => saveCheckpoint(checkpointPath, backend, p, identity);

  const err = process.stderr;
  if (!run.headerWritten) err.write(trainHeader(run, backend.name));
  if (flags.resume) err.write(`kiln: resuming from ${flags.resume} at step ${start.step} (epoch ${start.epoch + 1}, batch ${start.batch})\n`);
  const prepareStart = performance.now();
  const shapes = feedSteps(feed.sizes, evaluation.sizes);
  for (const [kind, batch] of shapes) await backend.prepare(kind, batch);
  const prepareSeconds = (performance.now() - prepareStart) / 1000;
  try {
    await run.checked;
  } catch (e) {
    backend.dispose();
    throw e;
  }
  const batches = (kind: string) => shapes.filter(([k]) => k === kind).map(([, b]) => b).join(' and ');

  let stopping = false;
  const onSigint = () => {
    if (stopping) process.exit(130);
    stopping = true;
    err.write('\nkiln: interrupted; finishing the current step (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSigint);
  // After the handler: a Ctrl-C prompted by this line finds it in place.
  err.write(`kiln: ${run.prepared} the train step (batch ${batches('train')}) and the eval step (batch ${batches('eval')}) in ${prepareSeconds.toFixed(2)} s\n`);
  const progress = progressHooks(t.epochs, units);
  // Opened at the first step's line: a run that fails before any step leaves no empty file.
  let log: number | undefined;
  const logLine = (line: string) => writeSync((log ??= openSync(flags.log!, 'w')), line);
  let result;
  try {
    result = await train(
      backend,
      data,
      {
        ...cfg,
        maxSteps,
        optimizer: t.optimizer,
        evalBatchSize: run.evalBatchSize,
        log: flags.log ? logLine : undefined,
        checkpoint: every && flags.checkpoint ? { every, save } : undefined,
        checkNumerics: run.checkNumerics,
      },
      { ...progress, stopRequested: () => stopping },
      start,
    );
  } finally {
    if (log !== undefined) closeSync(log);
    progress.stop();
    process.off('SIGINT', onSigint);
  }

  await syncState(backend);
  if (result.interrupted) {
    save(result.position);
    err.write(`kiln: stopped at step ${result.position.step}; checkpoint written to ${checkpointPath}\n  resume with: ${run.command} --resume ${checkpointPath}\n`);
    process.exitCode = 130;
  } else if (!Number.isNaN(result.testAccuracy)) {
    // A resumed run says how many of the steps it ran itself: its time and images/s cover only those.
    const own = start.step > 0 ? ` (${result.steps - start.step} in this run)` : '';
    process.stdout.write(`kiln: ${result.steps} step${result.steps === 1 ? '' : 's'}${own} in ${result.seconds.toFixed(1)} s ${resultWords(result, units)}\n`);
  }
  if (flags.checkpoint && !result.interrupted) {
    // The run's end is a checkpoint too: --resume from it continues with the next epoch or step.
    save(result.position);
    err.write(`kiln: checkpoint written to ${checkpointPath}\n`);
  }
  if (flags.save) {
    saveWeights(flags.save, backend, run.modelState);
    err.write(`kiln: weights written to ${flags.save}\n`);
  }
  if (flags.metricsJson) {
    writeFileAtomic(flags.metricsJson, JSON.stringify(metrics(result, units, backend.name), null, 2) + '\n');
  }
}
