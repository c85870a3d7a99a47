import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CIFAR10, CIFAR100 } from '../../../src/runtime/data/cifar.ts';
import { fillBatch } from '../../../src/runtime/data/dataset.ts';
import { loadDataset } from '../../../src/runtime/data/dataset-file.ts';
import { thrown } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kiln-cifar-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PIXELS = 3072;

/**
 * Records with `labels` (one or two bytes each) and pixels that name their image: image `id`'s
 * pixel j is (id * 7 + j) % 256, so a record read from the wrong place shows.
 */
function records(labels: number[][], firstId: number): Uint8Array {
  const per = labels[0]!.length + PIXELS;
  const out = new Uint8Array(labels.length * per);
  labels.forEach((l, r) => {
    out.set(l, r * per);
    for (let j = 0; j < PIXELS; j++) out[r * per + l.length + j] = ((firstId + r) * 7 + j) % 256;
  });
  return out;
}

/** A CIFAR-10 folder: batch k (1..5) holds k records, ids in file order; test_batch 2. */
function cifar10(name: string, over: Record<string, Uint8Array> = {}, gz = false): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  let id = 0;
  for (const [k, f] of CIFAR10.train.entries()) {
    const n = k + 1;
    const bytes = over[f] ?? records(Array.from({ length: n }, (_, r) => [(id + r) % 10]), id);
    id += n;
    writeFileSync(join(dir, gz ? `${f}.gz` : f), gz ? gzipSync(bytes) : bytes);
  }
  writeFileSync(join(dir, CIFAR10.test), over[CIFAR10.test] ?? records([[9], [0]], 100));
  return dir;
}

/** A CIFAR-100 folder: 4 training records with (coarse, fine) labels, 2 test records. */
function cifar100(name: string, over: Record<string, Uint8Array> = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.bin'), over['train.bin'] ?? records([[19, 99], [0, 5], [3, 42], [7, 77]], 0));
  writeFileSync(join(dir, 'test.bin'), over['test.bin'] ?? records([[1, 11], [2, 22]], 50));
  return dir;
}

describe('CIFAR-10 binary batches', () => {
  it('reads every record in file order, batch 1 to 5, as 3x32x32 CHW images', () => {
    const d = loadDataset(cifar10('c10'));
    expect(d.name).toBe('c10');
    expect(d.imageShape).toEqual([3, 32, 32]);
    expect(d.numClasses).toBe(10);
    expect(d.train.count).toBe(15);
    expect(d.test.count).toBe(2);
    expect(Array.from(d.train.labels)).toEqual(Array.from({ length: 15 }, (_, i) => i % 10));
    for (const id of [0, 1, 5, 14]) expect(d.train.images.subarray(id * PIXELS, (id + 1) * PIXELS)).toEqual(records([[0]], id).subarray(1));
    expect(Array.from(d.test.labels)).toEqual([9, 0]);
    expect(d.test.images[PIXELS]).toBe((101 * 7) % 256);
    // Messages name a training label by its file and record.
    expect(d.trainLabelAt!(0)).toBe(`record 0 of ${join(tmp, 'c10', 'data_batch_1.bin')}`);
    expect(d.trainLabelAt!(7)).toBe(`record 1 of ${join(tmp, 'c10', 'data_batch_4.bin')}`);
  });

  it('reads gzipped batches too', () => {
    const d = loadDataset(cifar10('c10gz', {}, true));
    expect(Array.from(d.train.labels)).toEqual(Array.from(loadDataset(cifar10('c10raw')).train.labels));
  });

  it('normalises each channel with its own mean and std', () => {
    const normalize = { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] };
    const d = loadDataset(cifar10('c10n'), { normalize });
    const x = new Float32Array(PIXELS);
    fillBatch(d.train, [3], 0, 1, x, new Float32Array(1), d.normalize);
    for (const j of [0, 1023, 1024, 2047, 2048, 3071]) {
      const c = Math.floor(j / 1024);
      const p = d.train.images[3 * PIXELS + j]!;
      expect(x[j], `pixel ${j}`).toBe(Math.fround(Math.fround(Math.fround(p / 255) - Math.fround(normalize.mean[c]!)) / Math.fround(normalize.std[c]!)));
    }
  });

  it("normalises with the data set's own statistics unless told otherwise (MNIST's would be wrong)", () => {
    expect(loadDataset(cifar10('c10default')).normalize).toEqual({ mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] });
    expect(loadDataset(cifar100('c100default')).normalize).toEqual({ mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] });
    expect(loadDataset(cifar10('c10given'), { normalize: { mean: [0.5], std: [0.25] } }).normalize).toEqual({ mean: [0.5], std: [0.25] });
  });

  it('says what is wrong with a bad file, naming it', () => {
    const trunc = cifar10('c10trunc', { 'data_batch_3.bin': records([[1], [2], [3]], 0).subarray(0, 3 * 3073 - 5) });
    const e = thrown(() => loadDataset(trunc));
    expect(e.message).toBe(`${join(trunc, 'data_batch_3.bin')}: 9214 bytes is not a whole number of 3073-byte CIFAR-10 records (a label byte and 3072 pixel bytes): 2 records and 3068 bytes over`);
    expect(e.hint).toBe('the download is probably incomplete or damaged; download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz again');
    const label = cifar10('c10label', { 'test_batch.bin': records([[3], [10]], 0) });
    expect(thrown(() => loadDataset(label)).message).toBe(`${join(label, 'test_batch.bin')}: record 1 has label 10, out of range for CIFAR-10's 10 classes (0..9)`);
    const empty = cifar10('c10empty', { 'data_batch_5.bin': new Uint8Array(0) });
    expect(thrown(() => loadDataset(empty)).message).toBe(`${join(empty, 'data_batch_5.bin')}: is empty; a CIFAR-10 file holds records of 3073 bytes (a label byte and 3072 pixel bytes)`);
    // CIFAR-100's records in CIFAR-10's names: the size says which.
    const wrong = cifar10('c10as100', { 'data_batch_1.bin': records([[1, 1]], 0) });
    expect(thrown(() => loadDataset(wrong)).hint).toBe("its size fits CIFAR-100's 3074-byte records: CIFAR-100's files are named train.bin and test.bin");
  });

  it('names every missing batch at once, and takes only the folder', () => {
    const dir = cifar10('c10missing');
    rmSync(join(dir, 'data_batch_2.bin'));
    rmSync(join(dir, 'test_batch.bin'));
    const e = thrown(() => loadDataset(dir));
    expect(e.message).toBe(`dataset "${dir}": missing 2 file(s) in ${dir}:\n    data_batch_2.bin (looked for ${join(dir, 'data_batch_2.bin')} and ${join(dir, 'data_batch_2.bin')}.gz)\n    test_batch.bin (looked for ${join(dir, 'test_batch.bin')} and ${join(dir, 'test_batch.bin')}.gz)`);
    expect(e.hint).toBe('a CIFAR-10 directory needs data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin (https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz extracts to such a directory)');
    const file = join(cifar10('c10file'), 'data_batch_1.bin');
    expect(thrown(() => loadDataset(file)).message).toBe(`dataset "${file}": ${file} is one of CIFAR-10's files; --data takes the directory that holds all of them`);
  });

  it('refuses --labels, which only CIFAR-100 has', () => {
    const dir = cifar10('c10labels');
    expect(thrown(() => loadDataset(dir, { labels: 'fine' })).message).toBe(`dataset "${dir}": --labels fine applies to CIFAR-100 (train.bin, test.bin), but this is CIFAR-10, which has one label per image`);
  });

  it('refuses normalisation for another channel count', () => {
    const dir = cifar10('c10norm');
    const e = thrown(() => loadDataset(dir, { normalize: { mean: [0.5, 0.5], std: [0.2, 0.2] } }));
    expect(e.message).toBe(`dataset "${dir}": normalize 0.5,0.5/0.2,0.2 has 2 means and stds, but the images have 3 channels`);
    expect(loadDataset(dir, { normalize: { mean: [0.5], std: [0.2] } }).normalize).toEqual({ mean: [0.5], std: [0.2] });
  });
});

describe('CIFAR-100', () => {
  it('reads fine labels by default and coarse ones when asked', () => {
    const dir = cifar100('c100');
    const fine = loadDataset(dir);
    expect(fine.numClasses).toBe(100);
    expect(Array.from(fine.train.labels)).toEqual([99, 5, 42, 77]);
    expect(Array.from(fine.test.labels)).toEqual([11, 22]);
    expect(fine.train.images.subarray(2 * PIXELS, 3 * PIXELS)).toEqual(records([[0, 0]], 2).subarray(2));
    const coarse = loadDataset(dir, { labels: 'coarse' });
    expect(coarse.numClasses).toBe(20);
    expect(Array.from(coarse.train.labels)).toEqual([19, 0, 3, 7]);
    expect(coarse.train.images).toEqual(fine.train.images);
  });

  it('checks both label bytes of every record, whichever is used', () => {
    const coarse = cifar100('c100coarse', { 'train.bin': records([[1, 1], [20, 5]], 0) });
    expect(thrown(() => loadDataset(coarse)).message).toBe(`${join(coarse, 'train.bin')}: record 1 has coarse label 20, out of range for CIFAR-100's 20 classes (0..19)`);
    const fine = cifar100('c100fine', { 'test.bin': records([[1, 100]], 0) });
    expect(thrown(() => loadDataset(fine, { labels: 'coarse' })).message).toBe(`${join(fine, 'test.bin')}: record 0 has fine label 100, out of range for CIFAR-100's 100 classes (0..99)`);
    const trunc = cifar100('c100trunc', { 'test.bin': new Uint8Array(3073) });
    expect(thrown(() => loadDataset(trunc)).message).toBe(`${join(trunc, 'test.bin')}: 3073 bytes is not a whole number of 3074-byte CIFAR-100 records (two label bytes (coarse, fine) and 3072 pixel bytes): 0 records and 3073 bytes over`);
    expect(CIFAR100.url).toBe('https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz');
  });

  it('prefers IDX files where a folder holds both', () => {
    const dir = cifar100('mixed');
    for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) writeFileSync(join(dir, f), new Uint8Array(0));
    expect(thrown(() => loadDataset(dir)).message).toMatch(/train-images-idx3-ubyte: too short for an IDX header/);
  });
});
