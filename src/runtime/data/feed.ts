/**
 * What the trainer and the evaluation need of a dataset, whatever its kind: an epoch's batches and
 * how to fill one. Images come in PyTorch's DataLoader order (the last batch short); text in
 * windows (text.ts), every training batch full.
 */
import { epochAugment, type Augment } from './augment.ts';
import { fillBatch, type Dataset, type Normalize, type Split } from './dataset.ts';
import { batchBounds, epochOrder, numBatches, type ShuffleSeed } from './shuffle.ts';
import { consecutiveWindows, epochWindows, fillWindows, isText, type TextDataset } from './text.ts';

/** Image or text data, as `kiln train` loads it. */
export type TrainData = Dataset | TextDataset;

export interface Feed {
  /** Batches per epoch. */
  readonly batches: number;
  /** Values of x per example, and labels per example (a window's T positions for text). */
  readonly exampleSize: number;
  readonly labelsPerExample: number;
  /** The batch sizes the epoch uses, each once: the full one, and a short last one if any. */
  readonly sizes: readonly number[];
  /** Examples in batch `b`. */
  size(b: number): number;
  /** Epoch `e`'s batches: each call writes batch `b` into x and labels (which may be longer). */
  epoch(e: number): (b: number, x: Float32Array, labels: Float32Array) => void;
}

/** The distinct batch sizes of `count` examples in batches of `batchSize`. */
export function batchSizes(count: number, batchSize: number): number[] {
  return [...new Set([Math.min(batchSize, count), count % batchSize])].filter((n) => n > 0);
}

/** Image batches in each epoch's order (shuffled from the seed, or file order), augmented per epoch. */
export function imageFeed(split: Split, batchSize: number, normalize: Normalize, opts: { shuffle?: ShuffleSeed; augment?: { augment: Augment; seed: number; shape: readonly [number, number, number] } } = {}): Feed {
  const exampleSize = split.images.length / split.count;
  return {
    batches: numBatches(split.count, batchSize),
    exampleSize,
    labelsPerExample: 1,
    sizes: batchSizes(split.count, batchSize),
    size: (b) => batchBounds(b, split.count, batchSize).size,
    epoch(e) {
      const order = epochOrder(split.count, e, opts.shuffle);
      const a = opts.augment;
      const augment = a && epochAugment(a.augment, a.shape, a.seed, e);
      return (b, x, labels) => {
        const { start, size } = batchBounds(b, split.count, batchSize);
        fillBatch(split, order, start, size, x, labels, normalize, augment);
      };
    },
  };
}

/** Training windows: `steps` full batches of B windows per epoch (text.ts's epochWindows). */
export function textTrainFeed(data: TextDataset, batchSize: number, steps: number, shuffle?: ShuffleSeed): Feed {
  const T = data.context;
  return {
    batches: steps,
    exampleSize: T,
    labelsPerExample: T,
    sizes: [batchSize],
    size: () => batchSize,
    epoch(e) {
      const starts = epochWindows(data.train.length, T, steps * batchSize, e, shuffle);
      return (b, x, labels) => fillWindows(data.train, starts, b * batchSize, batchSize, T, x, labels);
    },
  };
}

/** The held-out bytes as consecutive, non-overlapping windows from the start, in batches (the last short). */
export function textEvalFeed(data: TextDataset, batchSize: number): Feed {
  const T = data.context;
  const count = consecutiveWindows(data.val.length, T);
  const starts = Uint32Array.from({ length: count }, (_, k) => k * T);
  return {
    batches: numBatches(count, batchSize),
    exampleSize: T,
    labelsPerExample: T,
    sizes: batchSizes(count, batchSize),
    size: (b) => batchBounds(b, count, batchSize).size,
    epoch: () => (b, x, labels) => {
      const { start, size } = batchBounds(b, count, batchSize);
      fillWindows(data.val, starts, start, size, T, x, labels);
    },
  };
}

/** Evaluation batches: the test images in file order, or the held-out text's windows. */
export function evalFeed(data: TrainData, batchSize: number, normalize: Normalize): Feed {
  if (isText(data)) return textEvalFeed(data, batchSize);
  return imageFeed(data.test, batchSize, normalize);
}
