import { KilnError } from '../ir/errors.ts';
import { syncState, type Backend, type StepResult } from './backend.ts';
import type { TrainPosition } from './checkpoint.ts';
import type { Augment } from './data/augment.ts';
import type { Normalize } from './data/dataset.ts';
import { batchSizes, evalFeed, imageFeed, textTrainFeed, type Feed, type TrainData } from './data/feed.ts';
import { defaultStepsPerEpoch, isText, TEXT_VOCAB } from './data/text.ts';
import { argmax, evaluate } from './evaluate.ts';
import { scheduleScalars } from './schedule.ts';
import type { ResolvedOptimizer } from '../frontend/training-options.ts';
// Types only: the replay (and the reference backend it runs) loads only where --check-numerics is on.
import type { StepPlace, StepReplay } from './check-numerics.ts';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
  /** Draws the model's initialisation takes from PyTorch's generator (init.ts): where the data order's draws begin. */
  initDraws: number;
  normalize: Normalize;
  /** Training-set augmentation, drawn per (seed, epoch, image); evaluation is never augmented. */
  augment?: Augment;
  /** Text: training steps (batches of random windows) per epoch; default defaultStepsPerEpoch's. */
  stepsPerEpoch?: number;
  /** Stop after this many steps in total (counting steps before a resume). */
  maxSteps?: number;
  /**
   * The optimizer, where it has a schedule: each step is given the schedule's lr (and momentum)
   * for its step number, over a run of epochs × batches steps (--max-steps ends the run early
   * without shortening the schedule, so that a shorter run is a prefix of the longer one).
   */
  optimizer?: ResolvedOptimizer;
  evalBatchSize: number;
  /** Takes the JSON Lines log, one line `{"epoch", "step", "loss"}\n` per step (the CLI's --log file). */
  log?: (line: string) => void;
  /** Called every `every` steps with the position to checkpoint. */
  checkpoint?: { every: number; save: (p: TrainPosition) => void };
  /**
   * --check-numerics: after each step (run one at a time) the loss and all state are checked;
   * at the first non-finite value this explains the step (check-numerics.ts) and the run stops.
   */
  checkNumerics?: (place: StepPlace, feeds: StepReplay['feeds'], before: ReadonlyMap<string, Float32Array>, seen: string) => KilnError;
}

export interface StepInfo {
  epoch: number;
  /** 1-based batch number within the epoch. */
  batch: number;
  batches: number;
  step: number;
  loss: number;
  /** Accuracy on this epoch's training batches so far (of the next byte at every position, for text). */
  runningAccuracy: number;
  imagesPerSec: number;
}

export interface EpochInfo {
  epoch: number;
  trainLoss: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
}

export interface TrainHooks {
  /** `batches`: the batch this epoch ends at, the epoch's count or, under --max-steps, earlier (a progress bar's total). */
  onEpochStart?(epoch: number, batches: number, firstBatch: number): void;
  onStep?(s: StepInfo): void;
  onEpochEnd?(e: EpochInfo): void;
  /** Polled after every step; true ends the run after that step (Ctrl-C). */
  stopRequested?(): boolean;
}

export interface TrainResult {
  position: TrainPosition;
  interrupted: boolean;
  steps: number;
  /** Epochs trained in, the last one possibly partial (--max-steps): what the `Epoch N` lines counted. */
  epochs: number;
  trainLoss: number;
  testLoss: number;
  testAccuracy: number;
  imagesPerSec: number;
  seconds: number;
}

/**
 * Lets Ctrl-C, a page's clicks and its repaints in between steps. Browsers lack setImmediate, and
 * their setTimeout(0) waits at least 4 ms once timers nest, which would tax every step; a message
 * to ourselves is not throttled.
 */
const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((r) => setImmediate(r))
    : (() => {
        const channel = new MessageChannel();
        const waiting: (() => void)[] = [];
        channel.port1.onmessage = () => waiting.shift()!();
        return () =>
          new Promise<void>((r) => {
            waiting.push(r);
            channel.port2.postMessage(null);
          });
      })();

/**
 * Every step a run goes through, as (kind, batch size): training at the batch size and at the
 * epoch's short last batch, evaluation likewise. Compiling them up front (Backend.prepare) keeps
 * compilation out of the training time.
 */
export function runSteps(trainCount: number, testCount: number, batchSize: number, evalBatchSize: number): ['train' | 'eval', number][] {
  return feedSteps(batchSizes(trainCount, batchSize), batchSizes(testCount, evalBatchSize));
}

/** runSteps from the batch sizes of the training and evaluation feeds. */
export function feedSteps(train: readonly number[], evaluation: readonly number[]): ['train' | 'eval', number][] {
  return [...train.map((b) => ['train', b] as ['train', number]), ...evaluation.map((b) => ['eval', b] as ['eval', number])];
}

/** Classes the logits score: the dataset's, or every byte for text. */
export function classesOf(data: TrainData): number {
  return isText(data) ? TEXT_VOCAB : data.numClasses;
}

/** The training batches a run of `cfg` takes from `data`, epoch by epoch. */
export function trainFeed(data: TrainData, cfg: Pick<TrainConfig, 'batchSize' | 'seed' | 'shuffle' | 'initDraws' | 'normalize' | 'augment' | 'stepsPerEpoch'>): Feed {
  const shuffle = cfg.shuffle ? { seed: cfg.seed, initDraws: cfg.initDraws } : undefined;
  if (isText(data)) return textTrainFeed(data, cfg.batchSize, cfg.stepsPerEpoch ?? defaultStepsPerEpoch(data.train.length, cfg.batchSize, data.context), shuffle);
  return imageFeed(data.train, cfg.batchSize, cfg.normalize, { shuffle, augment: cfg.augment && { augment: cfg.augment, seed: cfg.seed, shape: data.imageShape } });
}

/**
 * The training loop: epochs of shuffled batches (images: the last one short, as PyTorch's
 * DataLoader without drop_last; text: windows, text.ts), an evaluation after each epoch.
 * Everything that varies between steps comes from the position, so a run resumed from a
 * checkpoint continues exactly where it stopped.
 */
export async function train(backend: Backend, data: TrainData, cfg: TrainConfig, hooks: TrainHooks = {}, start: TrainPosition = { step: 0, epoch: 0, batch: 0 }): Promise<TrainResult> {
  const feed = trainFeed(data, cfg);
  const classes = classesOf(data);
  const { batches, exampleSize, labelsPerExample } = feed;
  // A batch larger than the training set is all of it, as PyTorch's DataLoader makes it: the
  // buffers hold what a batch can hold (--batch-size 1000000000 asked for 3 TB here).
  const room = Math.max(...feed.sizes);
  const x = new Float32Array(room * exampleSize);
  const labels = new Float32Array(room * labelsPerExample);
  const { epochStats: resumed, ...startPos } = start;
  const pos: TrainPosition = startPos;
  const t0 = performance.now();
  let trainMs = 0;
  let images = 0;
  let result: Omit<TrainResult, 'position' | 'interrupted' | 'steps' | 'imagesPerSec' | 'seconds' | 'epochs'> = { trainLoss: NaN, testLoss: NaN, testAccuracy: NaN };
  let interrupted = false;
  let stopStats: TrainPosition['epochStats'];
  const scalars = cfg.optimizer && scheduleScalars(cfg.optimizer, cfg.epochs * batches);
  const done = () => (cfg.maxSteps !== undefined && pos.step >= cfg.maxSteps) || pos.epoch >= cfg.epochs;
  const queue = backend.queued;
  const depth = cfg.checkNumerics ? 1 : (queue?.depth ?? 1);
  /** Whether the run must look at the state after this many steps in total: a checkpoint, or the end. */
  const endsGroup = (steps: number) => (cfg.checkpoint !== undefined && steps % cfg.checkpoint.every === 0) || (cfg.maxSteps !== undefined && steps >= cfg.maxSteps);
  while (!done() && !interrupted) {
    const epochStart = performance.now();
    const fill = feed.epoch(pos.epoch);
    hooks.onEpochStart?.(pos.epoch, cfg.maxSteps === undefined ? batches : Math.min(batches, pos.batch + cfg.maxSteps - pos.step), pos.batch);
    // A run resumed mid-epoch carries on the epoch's sums, so its train loss covers every batch.
    let { lossSum, seen, correct } = pos.batch > 0 && resumed ? resumed : { lossSum: 0, seen: 0, correct: 0 };
    while (pos.batch < batches && !done()) {
      // Run steps in a group: one step on a synchronous backend, up to `depth` on a queued one
      // (webgpu), whose results are read back once for the group. A group ends early where the
      // run needs the state itself (a checkpoint) or stops.
      const group: { size: number; labels: Float32Array; r?: StepResult; before?: Map<string, Float32Array>; x?: Float32Array }[] = [];
      do {
        const step = pos.step + group.length;
        const b = pos.batch + group.length;
        const size = feed.size(b);
        fill(b, x, labels);
        const xs = x.subarray(0, size * exampleSize);
        const ls = labels.subarray(0, size * labelsPerExample);
        const before = cfg.checkNumerics ? await stateOf(backend) : undefined;
        const t = performance.now();
        const stepScalars = scalars?.(step);
        if (queue) queue.queueTrainStep(xs, ls, step, stepScalars);
        const r = queue ? undefined : backend.trainStep(xs, ls, step, stepScalars);
        trainMs += performance.now() - t;
        group.push({ size, labels: ls.slice(), r, before, x: before && xs.slice() });
      } while (group.length < depth && pos.batch + group.length < batches && !endsGroup(pos.step + group.length));
      if (queue) {
        const t = performance.now();
        const rs = await queue.flush();
        trainMs += performance.now() - t;
        rs.forEach((r, i) => (group[i]!.r = r));
      }
      for (const { size, labels: lab, r, before, x: stepX } of group) {
        images += size;
        if (cfg.checkNumerics && before) {
          const bad = nonFiniteAfterStep(r!.loss, (await stateOf(backend)).entries());
          if (bad) throw cfg.checkNumerics({ step: pos.step, epoch: pos.epoch, batch: pos.batch }, { x: stepX!, labels: lab, step: pos.step, scalars: scalars?.(pos.step) }, before, bad);
        }
        if (!Number.isFinite(r!.loss)) {
          // The user's run, not kiln, is what went wrong: an error of theirs, with what to try.
          throw new KilnError('diverged', `the loss became ${r!.loss} at step ${pos.step} (epoch ${pos.epoch + 1}, batch ${pos.batch + 1}): training diverged`, undefined, pos.step === 0 ? 'the first step is already non-finite: check the initial weights (--init) and the input data, then the learning rate; --check-numerics finds the op and model line where it began' : 'lower the learning rate (--lr), or add normalisation (batch norm) to the model; --check-numerics finds the op and model line where it began');
        }
        for (let i = 0; i < lab.length; i++) if (argmax(r!.logits, i, classes) === lab[i]) correct++;
        lossSum += r!.loss * size;
        seen += size;
        cfg.log?.(`${JSON.stringify({ epoch: pos.epoch, step: pos.step, loss: r!.loss })}\n`);
        pos.step++;
        pos.batch++;
        hooks.onStep?.({ epoch: pos.epoch, batch: pos.batch, batches, step: pos.step, loss: r!.loss, runningAccuracy: correct / (seen * labelsPerExample), imagesPerSec: images / (trainMs / 1000) });
      }
      if (cfg.checkpoint && pos.step % cfg.checkpoint.every === 0) {
        await syncState(backend);
        cfg.checkpoint.save(pos.batch === batches ? { step: pos.step, epoch: pos.epoch + 1, batch: 0 } : { ...pos, epochStats: { lossSum, seen, correct } });
      }
      await yieldToEventLoop();
      if (hooks.stopRequested?.()) {
        interrupted = true;
        if (pos.batch < batches) stopStats = { lossSum, seen, correct };
        break;
      }
    }
    if (pos.batch === batches) {
      pos.epoch++;
      pos.batch = 0;
    }
    if (interrupted) break;
    const ev = await evaluate(backend, evalFeed(data, cfg.evalBatchSize, cfg.normalize), classes);
    result = { trainLoss: seen ? lossSum / seen : NaN, testLoss: ev.loss, testAccuracy: ev.accuracy };
    hooks.onEpochEnd?.({ epoch: pos.epoch - (pos.batch === 0 ? 1 : 0), ...result, seconds: (performance.now() - epochStart) / 1000 });
  }
  return {
    position: stopStats ? { ...pos, epochStats: stopStats } : pos,
    interrupted,
    steps: pos.step,
    epochs: pos.epoch + (pos.batch > 0 ? 1 : 0),
    ...result,
    imagesPerSec: trainMs ? images / (trainMs / 1000) : 0,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Every persistent tensor, current. */
async function stateOf(b: Backend): Promise<Map<string, Float32Array>> {
  await syncState(b);
  return new Map([...b.stateShapes.keys()].map((name) => [name, b.getState(name)]));
}

/** What the backend showed after the step: a non-finite loss or persistent tensor, or undefined if all are finite. */
export function nonFiniteAfterStep(loss: number, state: Iterable<[string, Float32Array]>): string | undefined {
  if (!Number.isFinite(loss)) return `the loss is ${loss}`;
  for (const [name, data] of state) {
    const v = data.find((x) => !Number.isFinite(x));
    if (v !== undefined) return `${name} holds ${v}`;
  }
  return undefined;
}
