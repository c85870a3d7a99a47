/**
 * CIFAR-10's and CIFAR-100's binary versions (https://www.cs.toronto.edu/~kriz/cifar.html): files
 * of fixed-size records, each its label byte(s) then 3072 pixel bytes, 1024 red, 1024 green,
 * 1024 blue, row by row: a 3x32x32 image in PyTorch's CHW order. CIFAR-100 has two label bytes,
 * the coarse class (20) then the fine one (100).
 *
 * This module parses bytes and imports no Node module; dataset-file.ts finds and reads the files.
 */
import { dataError, datasetFromSplits, type Dataset, type LoadOptions, type Normalize, type ParsedSplit } from './dataset.ts';

export interface CifarLayout {
  readonly name: 'CIFAR-10' | 'CIFAR-100';
  /** The training split's files, in the order their records are read (and --no-shuffle trains). */
  readonly train: readonly string[];
  readonly test: string;
  /** Label bytes per record, before the pixels. */
  readonly labelBytes: 1 | 2;
  /** Where the files come from, for messages. */
  readonly url: string;
  /** The folder its archive extracts to. */
  readonly folder: string;
  /** Its training set's per-channel mean and std, the default --normalize on it (MNIST's would be wrong here). */
  readonly normalize: Normalize;
}

export const CIFAR10: CifarLayout = {
  name: 'CIFAR-10',
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: 'test_batch.bin',
  labelBytes: 1,
  url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  folder: 'cifar-10-batches-bin',
  normalize: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
};

export const CIFAR100: CifarLayout = {
  name: 'CIFAR-100',
  train: ['train.bin'],
  test: 'test.bin',
  labelBytes: 2,
  url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
  folder: 'cifar-100-binary',
  normalize: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
};

const SHAPE: [number, number, number] = [3, 32, 32];
const PIXELS = 3 * 32 * 32;

/** One file's bytes and the name messages give it. */
export interface NamedBytes {
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** Classes of each label byte: CIFAR-10's one, CIFAR-100's coarse and fine. */
function labelClasses(layout: CifarLayout): number[] {
  return layout.labelBytes === 1 ? [10] : [20, 100];
}

function redownload(layout: CifarLayout): string {
  return `the download is probably incomplete or damaged; download ${layout.url} again`;
}

/**
 * The records of one split's files, in file order; every file is checked (a whole number of
 * records, at least one, every label byte in range) before any is copied.
 */
function cifarSplit(layout: CifarLayout, files: readonly NamedBytes[], labels: 'fine' | 'coarse'): ParsedSplit {
  const record = layout.labelBytes + PIXELS;
  const classes = labelClasses(layout);
  const counts = files.map(({ name, bytes }) => {
    const what = `${layout.labelBytes === 1 ? 'a label byte' : 'two label bytes (coarse, fine)'} and ${PIXELS} pixel bytes`;
    if (bytes.length === 0) throw dataError(`${name}: is empty; a ${layout.name} file holds records of ${record} bytes (${what})`, redownload(layout));
    if (bytes.length % record !== 0) {
      throw dataError(`${name}: ${bytes.length} bytes is not a whole number of ${record}-byte ${layout.name} records (${what}): ${Math.floor(bytes.length / record)} records and ${bytes.length % record} bytes over`,
        layout.labelBytes === 1 && bytes.length % (record + 1) === 0 ? `its size fits CIFAR-100's ${record + 1}-byte records: CIFAR-100's files are named train.bin and test.bin` : redownload(layout));
    }
    for (let r = 0; r < bytes.length / record; r++) {
      for (let k = 0; k < layout.labelBytes; k++) {
        const v = bytes[r * record + k]!;
        if (v >= classes[k]!) {
          const which = layout.labelBytes === 1 ? 'label' : `${k === 0 ? 'coarse' : 'fine'} label`;
          throw dataError(`${name}: record ${r} has ${which} ${v}, out of range for ${layout.name}'s ${classes[k]} classes (0..${classes[k]! - 1})`, redownload(layout));
        }
      }
    }
    return bytes.length / record;
  });
  const count = counts.reduce((a, b) => a + b, 0);
  const images = new Uint8Array(count * PIXELS);
  const lab = new Uint8Array(count);
  const which = layout.labelBytes === 2 && labels === 'fine' ? 1 : 0;
  let n = 0;
  for (const { bytes } of files) {
    for (let at = 0; at < bytes.length; at += record, n++) {
      lab[n] = bytes[at + which]!;
      images.set(bytes.subarray(at + layout.labelBytes, at + record), n * PIXELS);
    }
  }
  const names = files.map((f) => f.name).join(', ');
  return {
    split: { images, labels: lab, count },
    shape: [...SHAPE],
    imagesFile: names,
    labelsFile: names,
    labelAt: (i) => {
      let f = 0;
      while (i >= counts[f]!) i -= counts[f++]!;
      return `record ${i} of ${files[f]!.name}`;
    },
  };
}

/**
 * A CIFAR dataset from its files' bytes (the training files in `layout.train`'s order); `name` is
 * its short name, `spec` as the user gave it. `opts.labels` picks CIFAR-100's fine (default) or
 * coarse classes.
 */
export function cifarDataset(layout: CifarLayout, name: string, train: readonly NamedBytes[], test: NamedBytes, opts: LoadOptions, spec = name): Dataset {
  if (opts.labels !== undefined && layout.labelBytes === 1) {
    throw dataError(`dataset "${spec}": --labels ${opts.labels} applies to CIFAR-100 (train.bin, test.bin), but this is ${layout.name}, which has one label per image`, 'drop --labels');
  }
  const labels = opts.labels ?? 'fine';
  const numClasses = layout.labelBytes === 1 ? 10 : labels === 'fine' ? 100 : 20;
  return datasetFromSplits(name, cifarSplit(layout, train, labels), cifarSplit(layout, [test], labels), { ...opts, numClasses, normalize: opts.normalize ?? layout.normalize }, spec);
}
