import { KilnError } from '../ir/errors.ts';
import { syncState, type Backend, type StepResult } from './backend.ts';
import type { TrainPosition } from './checkpoint.ts';
import { fillBatch, type Dataset } from './data/dataset.ts';
import { batchBounds, epochOrder, numBatches } from './data/shuffle.ts';
import { argmax, evaluate } from './evaluate.ts';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
  /** Draws the model's initialisation takes from PyTorch's generator (init.ts): where the data order's draws begin. */
  initDraws: number;
  normalize: readonly [number, number];
  /** Stop after this many steps in total (counting steps before a resume). */
  maxSteps?: number;
  evalBatchSize: number;
  /** Takes the JSON Lines log, one line `{"epoch", "step", "loss"}\n` per step (the CLI's --log file). */
  log?: (line: string) => void;
  /** Called every `every` steps with the position to checkpoint. */
  checkpoint?: { every: number; save: (p: TrainPosition) => void };
}

export interface StepInfo {
  epoch: number;
  /** 1-based batch number within the epoch. */
  batch: number;
  batches: number;
  step: number;
  loss: number;
  /** Accuracy on this epoch's training batches so far. */
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
  const sizes = (count: number, b: number) => [...new Set([Math.min(b, count), count % b])].filter((n) => n > 0);
  return [...sizes(trainCount, batchSize).map((b) => ['train', b] as ['train', number]), ...sizes(testCount, evalBatchSize).map((b) => ['eval', b] as ['eval', number])];
}

/**
 * The training loop: epochs of shuffled batches (the last one short, as PyTorch's DataLoader
 * without drop_last), a test evaluation after each epoch. Everything that varies between steps
 * comes from the position, so a run resumed from a checkpoint continues exactly where it stopped.
 */
export async function train(backend: Backend, data: Dataset, cfg: TrainConfig, hooks: TrainHooks = {}, start: TrainPosition = { step: 0, epoch: 0, batch: 0 }): Promise<TrainResult> {
  const { train: split, numClasses } = data;
  const pixels = split.images.length / split.count;
  const batches = numBatches(split.count, cfg.batchSize);
  // A batch larger than the training set is all of it, as PyTorch's DataLoader makes it: the
  // buffers hold what a batch can hold (--batch-size 1000000000 asked for 3 TB here).
  const room = Math.min(cfg.batchSize, split.count);
  const x = new Float32Array(room * pixels);
  const labels = new Float32Array(room);
  const pos = { ...start };
  const t0 = performance.now();
  let trainMs = 0;
  let images = 0;
  let result: Omit<TrainResult, 'position' | 'interrupted' | 'steps' | 'imagesPerSec' | 'seconds' | 'epochs'> = { trainLoss: NaN, testLoss: NaN, testAccuracy: NaN };
  let interrupted = false;
  const done = () => (cfg.maxSteps !== undefined && pos.step >= cfg.maxSteps) || pos.epoch >= cfg.epochs;
  const queue = backend.queued;
  const depth = queue?.depth ?? 1;
  /** Whether the run must look at the state after this many steps in total: a checkpoint, or the end. */
  const endsGroup = (steps: number) => (cfg.checkpoint !== undefined && steps % cfg.checkpoint.every === 0) || (cfg.maxSteps !== undefined && steps >= cfg.maxSteps);
  while (!done() && !interrupted) {
    const epochStart = performance.now();
    const order = epochOrder(split.count, pos.epoch, cfg.shuffle ? { seed: cfg.seed, initDraws: cfg.initDraws } : undefined);
    hooks.onEpochStart?.(pos.epoch, cfg.maxSteps === undefined ? batches : Math.min(batches, pos.batch + cfg.maxSteps - pos.step), pos.batch);
    let lossSum = 0;
    let seen = 0;
    let correct = 0;
    while (pos.batch < batches && !done()) {
      // Run steps in a group: one step on a synchronous backend, up to `depth` on a queued one
      // (webgpu), whose results are read back once for the group. A group ends early where the
      // run needs the state itself (a checkpoint) or stops.
      const group: { labels: Float32Array; r?: StepResult }[] = [];
      do {
        const step = pos.step + group.length;
        const { start: s, size } = batchBounds(pos.batch + group.length, split.count, cfg.batchSize);
        fillBatch(split, order, s, size, x, labels, cfg.normalize[0], cfg.normalize[1]);
        const t = performance.now();
        if (queue) queue.queueTrainStep(x.subarray(0, size * pixels), labels.subarray(0, size), step);
        const r = queue ? undefined : backend.trainStep(x.subarray(0, size * pixels), labels.subarray(0, size), step);
        trainMs += performance.now() - t;
        group.push({ labels: labels.slice(0, size), r });
      } while (group.length < depth && pos.batch + group.length < batches && !endsGroup(pos.step + group.length));
      if (queue) {
        const t = performance.now();
        const rs = await queue.flush();
        trainMs += performance.now() - t;
        rs.forEach((r, i) => (group[i]!.r = r));
      }
      for (const { labels: lab, r } of group) {
        const size = lab.length;
        images += size;
        if (!Number.isFinite(r!.loss)) {
          // The user's run, not kiln, is what went wrong: an error of theirs, with what to try.
          throw new KilnError('diverged', `the loss became ${r!.loss} at step ${pos.step} (epoch ${pos.epoch + 1}, batch ${pos.batch + 1}): training diverged`, undefined, pos.step === 0 ? 'the first step is already non-finite: check the initial weights (--init) and the input data, then the learning rate' : 'lower the learning rate (--lr), or add normalisation (batch norm) to the model');
        }
        for (let i = 0; i < size; i++) if (argmax(r!.logits, i, numClasses) === lab[i]) correct++;
        lossSum += r!.loss * size;
        seen += size;
        cfg.log?.(`${JSON.stringify({ epoch: pos.epoch, step: pos.step, loss: r!.loss })}\n`);
        pos.step++;
        pos.batch++;
        hooks.onStep?.({ epoch: pos.epoch, batch: pos.batch, batches, step: pos.step, loss: r!.loss, runningAccuracy: correct / seen, imagesPerSec: images / (trainMs / 1000) });
      }
      if (cfg.checkpoint && pos.step % cfg.checkpoint.every === 0) {
        await syncState(backend);
        cfg.checkpoint.save(pos.batch === batches ? { step: pos.step, epoch: pos.epoch + 1, batch: 0 } : { ...pos });
      }
      await yieldToEventLoop();
      if (hooks.stopRequested?.()) {
        interrupted = true;
        break;
      }
    }
    if (pos.batch === batches) {
      pos.epoch++;
      pos.batch = 0;
    }
    if (interrupted) break;
    const ev = await evaluate(backend, data.test, numClasses, cfg.evalBatchSize, cfg.normalize);
    result = { trainLoss: seen ? lossSum / seen : NaN, testLoss: ev.loss, testAccuracy: ev.accuracy };
    hooks.onEpochEnd?.({ epoch: pos.epoch - (pos.batch === 0 ? 1 : 0), ...result, seconds: (performance.now() - epochStart) / 1000 });
  }
  return {
    position: pos,
    interrupted,
    steps: pos.step,
    epochs: pos.epoch + (pos.batch > 0 ? 1 : 0),
    ...result,
    imagesPerSec: trainMs ? images / (trainMs / 1000) : 0,
    seconds: (performance.now() - t0) / 1000,
  };
}
