/**
 * Image-classification datasets in IDX files (MNIST and anything laid out like it). Pixels stay
 * as the file's u8 bytes; `fillBatch` converts just the samples of one batch to normalised
 * float32, so loading MNIST costs a file read, not 47M float conversions.
 *
 * This module works on the files' bytes and imports no Node module, so that a browser page can
 * use it; dataset-file.ts finds and reads the files.
 */
import { KilnError } from '../../ir/errors.ts';
import { checkLabels, idxImages, idxLabels, labelRange } from './idx.ts';

export interface Split {
  /** Raw pixels, count*C*H*W, row-major (CHW per image). */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  name: string;
  train: Split;
  test: Split;
  numClasses: number;
  /** One image's shape, [channels, rows, cols]. */
  imageShape: [number, number, number];
  /** [mean, std] for fillBatch: the option given to loadDataset, else MNIST's. */
  normalize: [number, number];
  /** The files it was read from, for messages (absent for a dataset that came from elsewhere). */
  files?: DatasetFiles<string>;
}

export interface LoadOptions {
  normalize?: [number, number];
  numClasses?: number;
}

/** torchvision's customary MNIST statistics. */
export const MNIST_NORMALIZE: [number, number] = [0.1307, 0.3081];

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

function parseSplit(images: Uint8Array, labels: Uint8Array, imagesFile: string, labelsFile: string): { split: Split; shape: [number, number, number] } {
  const img = idxImages(images, imagesFile);
  const lab = idxLabels(labels, labelsFile);
  if (lab.length !== img.count) {
    throw dataError(`${labelsFile}: has ${lab.length} labels but ${imagesFile} has ${img.count} images`,
      'the images and labels files must come from the same split (train-* with train-*, t10k-* with t10k-*)');
  }
  return { split: { images: img.images, labels: lab, count: img.count }, shape: [img.channels, img.rows, img.cols] };
}

/**
 * A dataset from the four IDX files' bytes, already decompressed; `fileNames` name them in
 * messages, `spec` names the dataset as the user gave it (a directory, say) where `name` is its
 * short name.
 */
export function datasetFromBytes(name: string, files: DatasetFiles<Uint8Array>, fileNames: DatasetFiles<string>, opts: LoadOptions = {}, spec = name): Dataset {
  const train = parseSplit(files.trainImages, files.trainLabels, fileNames.trainImages, fileNames.trainLabels);
  const test = parseSplit(files.testImages, files.testLabels, fileNames.testImages, fileNames.testLabels);
  // Zero images would train and evaluate to NaN averages, and write weights, without a word.
  for (const [split, file] of [[train, fileNames.trainImages], [test, fileNames.testImages]] as const) {
    if (split.split.count === 0) throw dataError(`${file}: holds no images`, 'a dataset needs at least one training and one test image');
  }
  if (train.shape.join() !== test.shape.join()) {
    throw dataError(`${fileNames.testImages}: images are ${test.shape.join('x')} but ${fileNames.trainImages} has ${train.shape.join('x')}`,
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
    checkLabels(train.split.labels, numClasses, fileNames.trainLabels);
  } else {
    numClasses = Math.max(MIN_CLASSES, labelRange(train.split.labels));
    testHint = `the classes are those of the training labels (${fileNames.trainLabels}: 0..${numClasses - 1}, and at least ${MIN_CLASSES}); fix the test labels, or train on data that has every class`;
  }
  checkLabels(test.split.labels, numClasses, fileNames.testLabels, testHint);
  const normalize = opts.normalize ?? MNIST_NORMALIZE;
  if (!(normalize[1] > 0) || !Number.isFinite(normalize[0]) || !Number.isFinite(normalize[1])) {
    throw dataError(`dataset "${spec}": normalize [${normalize.join(', ')}] needs a finite mean and a positive std`,
      'MNIST uses [0.1307, 0.3081]');
  }
  return {
    name,
    train: train.split,
    test: test.split,
    numClasses,
    imageShape: train.shape,
    normalize: [normalize[0], normalize[1]],
    files: fileNames,
  };
}

/**
 * The normalised value of each of the 256 pixel values, computed as torchvision does in float32:
 * ToTensor gives fround(p / 255) (a true division), Normalize then `sub_(mean).div_(std)` with mean
 * and std as float32 tensors. Each JS double op on f32 operands rounded back with fround gives the
 * correctly rounded f32 result, so the table equals PyTorch's bitwise.
 */
function pixelTable(mean: number, std: number): Float32Array {
  const m = Math.fround(mean);
  const s = Math.fround(std);
  const t = new Float32Array(256);
  for (let p = 0; p < 256; p++) t[p] = Math.fround(Math.fround(Math.fround(p / 255) - m) / s);
  return t;
}

let cached: { mean: number; std: number; table: Float32Array } | undefined;

/** The 256-entry pixel → normalised value table fillBatch uses. */
export function normalizeTable(mean: number, std: number): Float32Array {
  if (cached === undefined || cached.mean !== mean || cached.std !== std) {
    cached = { mean, std, table: pixelTable(mean, std) };
  }
  return cached.table;
}

/**
 * Writes samples indices[start .. start+count) of `split` into `x` ([count, 1, H, W], normalised)
 * and `labels` (class indices as floats). `x` and `labels` may be longer than needed.
 */
export function fillBatch(
  split: Split,
  indices: ArrayLike<number>,
  start: number,
  count: number,
  x: Float32Array,
  labels: Float32Array,
  mean = MNIST_NORMALIZE[0],
  std = MNIST_NORMALIZE[1],
): void {
  const pixels = split.count > 0 ? split.images.length / split.count : 0;
  if (start < 0 || start + count > indices.length) {
    throw new RangeError(`fillBatch: samples ${start}..${start + count} outside the ${indices.length} indices`);
  }
  if (x.length < count * pixels || labels.length < count) {
    throw new RangeError(`fillBatch: ${count} samples need x of ${count * pixels} and labels of ${count}; got ${x.length} and ${labels.length}`);
  }
  const table = normalizeTable(mean, std);
  const { images } = split;
  for (let b = 0; b < count; b++) {
    const i = indices[start + b]!;
    if (!(i >= 0 && i < split.count)) {
      throw new RangeError(`fillBatch: sample index ${i} outside the split of ${split.count}`);
    }
    const src = i * pixels;
    const dst = b * pixels;
    for (let j = 0; j < pixels; j++) x[dst + j] = table[images[src + j]!]!;
    labels[b] = split.labels[i]!;
  }
}
