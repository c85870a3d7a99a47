/**
 * Image-classification datasets (IDX files as MNIST's, CIFAR's binary batches). Pixels stay
 * as the file's u8 bytes; `fillBatch` converts just the samples of one batch to normalised
 * float32, so loading MNIST costs a file read, not 47M float conversions.
 *
 * This module works on the files' bytes and imports no Node module, so that a browser page can
 * use it; dataset-file.ts finds and reads the files.
 */
import { KilnError } from '../../ir/errors.ts';
import { drawImage, type EpochAugment, type ImageDraw, writeImage } from './augment.ts';
import { checkLabels, idxImages, idxLabels, labelRange } from './idx.ts';

export interface Split {
  /** Raw pixels, count*C*H*W, row-major (CHW per image). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/**
 * torchvision's Normalize(mean, std) after ToTensor: one mean and std per channel, or one of each
 * for every channel.
 */
export interface Normalize {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface Dataset {
  name: string;
  train: Split;
  test: Split;
  numClasses: number;
  /** One image's shape, [channels, rows, cols]. */
  imageShape: [number, number, number];
  /** For fillBatch: the option given to loadDataset, else MNIST's. */
  normalize: Normalize;
  /** Where training label `index` comes from, for messages ("index 7 of FILE"). */
  trainLabelAt?: (index: number) => string;
}

export interface LoadOptions {
  normalize?: Normalize;
  numClasses?: number;
  /** CIFAR-100's label of each image: its fine class (100, the default) or its coarse one (20). */
  labels?: 'fine' | 'coarse';
}

/** torchvision's customary MNIST statistics. */
export const MNIST_NORMALIZE: Normalize = { mean: [0.1307], std: [0.3081] };

/** MNIST-like datasets are 10-way at least, so a training set that happens to lack 9s keeps 10 outputs. */
const MIN_CLASSES = 10;

/** The four files of a dataset, by MNIST's names (without .gz). */
export const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** One value per file of a dataset. */
export type DatasetFiles<T> = Record<keyof typeof FILES, T>;

/** The KilnError every dataset problem is. */
export function dataError(message: string, hint: string): KilnError {
  return new KilnError('data', message, undefined, hint);
}

/** One split read from its files, with the names messages give them. */
export interface ParsedSplit {
  split: Split;
  shape: [number, number, number];
  /** The file(s) its images (and, for IDX, its labels) came from. */
  imagesFile: string;
  labelsFile: string;
  /** Where label `index` comes from, for messages. */
  labelAt: (index: number) => string;
}

function parseSplit(images: Uint8Array, labels: Uint8Array, imagesFile: string, labelsFile: string): ParsedSplit {
  const img = idxImages(images, imagesFile);
  const lab = idxLabels(labels, labelsFile);
  if (lab.length !== img.count) {
    throw dataError(`${labelsFile}: has ${lab.length} labels but ${imagesFile} has ${img.count} images`,
      'the images and labels files must come from the same split (train-* with train-*, t10k-* with t10k-*)');
  }
  return { split: { images: img.images, labels: lab, count: img.count }, shape: [img.channels, img.rows, img.cols], imagesFile, labelsFile, labelAt: (i) => `index ${i} of ${labelsFile}` };
}

/**
 * A dataset from the four IDX files' bytes, already decompressed; `fileNames` name them in
 * messages, `spec` names the dataset as the user gave it (a directory, say) where `name` is its
 * short name.
 */
export function datasetFromBytes(name: string, files: DatasetFiles<Uint8Array>, fileNames: DatasetFiles<string>, opts: LoadOptions = {}, spec = name): Dataset {
  if (opts.labels !== undefined) {
    throw dataError(`dataset "${spec}": --labels ${opts.labels} applies to CIFAR-100 (train.bin, test.bin), but these are IDX files, which have one label per image`, 'drop --labels');
  }
  const train = parseSplit(files.trainImages, files.trainLabels, fileNames.trainImages, fileNames.trainLabels);
  const test = parseSplit(files.testImages, files.testLabels, fileNames.testImages, fileNames.testLabels);
  return datasetFromSplits(name, train, test, opts, spec);
}

/**
 * A dataset from its two splits, checked against each other and the options: both hold images of
 * one shape, the labels fit the classes (`opts.numClasses`, else those the training labels
 * show), the normalisation has a statistic per channel.
 */
export function datasetFromSplits(name: string, train: ParsedSplit, test: ParsedSplit, opts: LoadOptions, spec = name): Dataset {
  // Zero images would train and evaluate to NaN averages, and write weights, without a word.
  for (const split of [train, test]) {
    if (split.split.count === 0) throw dataError(`${split.imagesFile}: holds no images`, 'a dataset needs at least one training and one test image');
  }
  if (train.shape.join() !== test.shape.join()) {
    throw dataError(`${test.imagesFile}: images are ${test.shape.join('x')} but ${train.imagesFile} has ${train.shape.join('x')}`,
      'train and test images must have the same size');
  }
  let numClasses = opts.numClasses;
  // kiln train has no class-count flag: the training labels set it, so that is what to say.
  let testHint: string | undefined;
  if (numClasses !== undefined) {
    if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > 256) {
      throw dataError(`dataset "${spec}": numClasses ${numClasses} must be an integer from 1 to 256`,
        'u8 labels allow at most 256 classes');
    }
    checkLabels(train.split.labels, numClasses, train.labelsFile);
  } else {
    numClasses = Math.max(MIN_CLASSES, labelRange(train.split.labels));
    testHint = `the classes are those of the training labels (${train.labelsFile}: 0..${numClasses - 1}, and at least ${MIN_CLASSES}); fix the test labels, or train on data that has every class`;
  }
  checkLabels(test.split.labels, numClasses, test.labelsFile, testHint);
  const normalize = opts.normalize ?? MNIST_NORMALIZE;
  const channels = train.shape[0];
  const { mean, std } = normalize;
  if (mean.length !== std.length || mean.some((m) => !Number.isFinite(m)) || std.some((s) => !(s > 0 && Number.isFinite(s)))) {
    throw dataError(`dataset "${spec}": normalize ${showNormalize(normalize)} needs as many finite means as positive stds`,
      'MNIST uses 0.1307/0.3081');
  }
  if (mean.length !== 1 && mean.length !== channels) {
    throw dataError(`dataset "${spec}": normalize ${showNormalize(normalize)} has ${mean.length} means and stds, but the images have ${channels} channel${channels === 1 ? '' : 's'}`,
      channels === 1 ? 'give one mean and one std: --normalize MEAN,STD' : `give ${channels} means and ${channels} stds, one per channel (CIFAR-10's: --normalize 0.4914,0.4822,0.4465/0.2470,0.2435,0.2616), or one of each for all channels`);
  }
  return {
    name,
    train: train.split,
    test: test.split,
    numClasses,
    imageShape: train.shape,
    normalize,
    trainLabelAt: train.labelAt,
  };
}

/** MEANS/STDS as --normalize takes them. */
function showNormalize(n: Normalize): string {
  return `${n.mean.join(',')}/${n.std.join(',')}`;
}

/**
 * The normalised value of each of the 256 pixel values, computed as torchvision does in float32:
 * ToTensor gives fround(p / 255) (a true division), Normalize then `sub_(mean).div_(std)` with mean
 * and std as float32 tensors. Each JS double op on f32 operands rounded back with fround gives the
 * correctly rounded f32 result, so the table equals PyTorch's bitwise.
 */
function pixelTable(mean: number, std: number, t: Float32Array): void {
  const m = Math.fround(mean);
  const s = Math.fround(std);
  for (let p = 0; p < 256; p++) t[p] = Math.fround(Math.fround(Math.fround(p / 255) - m) / s);
}

const tables = new WeakMap<Normalize, Float32Array>();

/** The pixel → normalised value tables fillBatch uses: 256 entries per channel of `n`, made once per Normalize. */
export function normalizeTable(n: Normalize): Float32Array {
  let table = tables.get(n);
  if (table === undefined) {
    table = new Float32Array(256 * n.mean.length);
    for (let c = 0; c < n.mean.length; c++) pixelTable(n.mean[c]!, n.std[c]!, table.subarray(256 * c, 256 * (c + 1)));
    tables.set(n, table);
  }
  return table;
}

/**
 * Writes samples indices[start .. start+count) of `split` into `x` ([count, C, H, W], normalised
 * per channel, augmented as `augment` draws for its epoch) and `labels` (class indices as floats).
 * `x` and `labels` may be longer than needed.
 */
export function fillBatch(
  split: Split,
  indices: ArrayLike<number>,
  start: number,
  count: number,
  x: Float32Array,
  labels: Float32Array,
  normalize: Normalize = MNIST_NORMALIZE,
  augment?: EpochAugment,
): void {
  const pixels = split.count > 0 ? split.images.length / split.count : 0;
  if (start < 0 || start + count > indices.length) {
    throw new RangeError(`fillBatch: samples ${start}..${start + count} outside the ${indices.length} indices`);
  }
  if (x.length < count * pixels || labels.length < count) {
    throw new RangeError(`fillBatch: ${count} samples need x of ${count * pixels} and labels of ${count}; got ${x.length} and ${labels.length}`);
  }
  const tables = normalize.mean.length;
  // Without augmentation an image is only its channels' planes, read as one row each.
  const channels = augment ? augment.shape[0] : tables;
  const rows = augment ? augment.shape[1] : 1;
  const cols = augment ? augment.shape[2] : pixels / tables;
  if (channels * rows * cols !== pixels || (tables !== 1 && tables !== channels)) {
    throw new RangeError(`fillBatch: images of ${pixels} pixels do not fit shape [${channels}, ${rows}, ${cols}] with ${tables} normalisation channel(s)`);
  }
  const table = normalizeTable(normalize);
  const pad = augment?.augment.randomCrop?.padding ?? 0;
  const { images } = split;
  for (let b = 0; b < count; b++) {
    const i = indices[start + b]!;
    if (!(i >= 0 && i < split.count)) {
      throw new RangeError(`fillBatch: sample index ${i} outside the split of ${split.count}`);
    }
    writeImage(images, i * pixels, x, b * pixels, table, channels, rows, cols, pad, augment ? drawImage(augment, i, drawn) : NO_DRAW);
    labels[b] = split.labels[i]!;
  }
}

const NO_DRAW: Readonly<ImageDraw> = { top: 0, left: 0, flip: false };
/** The draws of the image being written: one object for every batch. */
const drawn: ImageDraw = { top: 0, left: 0, flip: false };
