import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { textEvalFeed, textTrainFeed } from '../../../src/runtime/data/feed.ts';
import { epochGenerator } from '../../../src/runtime/data/shuffle.ts';
import { bitsPerByte, defaultStepsPerEpoch, epochWindows, fillWindows, textDataset } from '../../../src/runtime/data/text.ts';
import { loadTextDataset } from '../../../src/runtime/data/text-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-text-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes whose value is their index mod 256: a window's contents say where it starts. */
const ramp = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 256);
const key = { seed: 3, initDraws: 1000 };

describe('textDataset', () => {
  it('trains on the first (1 - F) of the bytes, floor(n·(1 - F)) as Python\'s int(n * 0.9), and holds out the rest', () => {
    const d = textDataset(ramp(1000), 'f.txt', 'f.txt', { context: 8, valFraction: 0.1 });
    expect(d.train.length).toBe(900);
    expect(d.val.length).toBe(100);
    expect(d.val[0]).toBe(900 % 256);
    expect(textDataset(ramp(1001), 'f.txt', 'f.txt', { context: 8, valFraction: 0.25 }).train.length).toBe(Math.floor(1001 * 0.75));
  });

  it('refuses an empty file, a file without a window of T+1 bytes on each side, and a bad fraction, naming the file and what it needs', () => {
    expect(() => textDataset(new Uint8Array(), 'empty.txt', 'empty.txt', { context: 8, valFraction: 0.1 })).toThrow('empty.txt: is empty');
    // 50 bytes: 45 to train, 5 held out; a window of context 8 needs 9.
    expect(() => textDataset(ramp(50), 'short.txt', 'short.txt', { context: 8, valFraction: 0.1 })).toThrow(
      'short.txt: 50 bytes split into 45 to train on and 5 held out (val fraction 0.1); each part needs a window of 9 bytes (context 8 and the byte after it)',
    );
    try {
      textDataset(ramp(50), 'short.txt', 'short.txt', { context: 8, valFraction: 0.1 });
    } catch (e) {
      // 81 bytes split 72/9: the fewest that leave 9 held out.
      expect((e as { hint?: string }).hint).toBe('use a text of at least 81 bytes, a shorter context (training.input), or another --val-fraction');
    }
    expect(() => textDataset(ramp(81), 'ok.txt', 'ok.txt', { context: 8, valFraction: 0.1 })).not.toThrow();
    expect(() => textDataset(ramp(80), 'ok.txt', 'ok.txt', { context: 8, valFraction: 0.1 })).toThrow(/needs a window of 9 bytes/);
    // Training bytes can be what runs short: 20 bytes at F 0.9 keep floor(20 · (1 − 0.9)) = 1 (1 − 0.9 is just under 0.1).
    expect(() => textDataset(ramp(20), 'f.txt', 'f.txt', { context: 8, valFraction: 0.9 })).toThrow('f.txt: 20 bytes split into 1 to train on and 19 held out');
    for (const f of [0, 1, -0.5, NaN]) expect(() => textDataset(ramp(1000), 'f.txt', 'f.txt', { context: 8, valFraction: f })).toThrow(`f.txt: the held-out fraction ${f} must be between 0 and 1 (exclusive)`);
  });

  it('reads a file; a missing file and a directory are named', () => {
    const file = join(dir, 'hello.txt');
    writeFileSync(file, 'héllo, wörld! '.repeat(20));
    const d = loadTextDataset(file, { context: 4, valFraction: 0.1 });
    expect(d.name).toBe('hello.txt');
    // UTF-8 bytes, not characters: é and ö are two bytes each.
    expect(d.train.length + d.val.length).toBe(16 * 20);
    expect(Array.from(d.train.subarray(0, 3))).toEqual([0x68, 0xc3, 0xa9]);
    expect(() => loadTextDataset(join(dir, 'nope.txt'), { context: 4, valFraction: 0.1 })).toThrow(`${join(dir, 'nope.txt')}: file not found`);
    mkdirSync(join(dir, 'folder.txt'));
    expect(() => loadTextDataset(join(dir, 'folder.txt'), { context: 4, valFraction: 0.1 })).toThrow('is a directory; a text dataset is one file');
  });
});

describe('windows', () => {
  it('x is [B, T] bytes and the labels the byte after each position, flattened [B·T]', () => {
    const bytes = ramp(100);
    const x = new Float32Array(2 * 4);
    const labels = new Float32Array(2 * 4);
    fillWindows(bytes, [10, 50], 0, 2, 4, x, labels);
    expect(Array.from(x)).toEqual([10, 11, 12, 13, 50, 51, 52, 53]);
    expect(Array.from(labels)).toEqual([11, 12, 13, 14, 51, 52, 53, 54]);
    // The last window that fits ends at the last byte; one further runs past it.
    expect(() => fillWindows(bytes, [95], 0, 1, 4, x, labels)).not.toThrow();
    expect(() => fillWindows(bytes, [96], 0, 1, 4, x, labels)).toThrow(/runs past/);
  });

  it('without shuffling, row i of step s starts at byte (s·B + i)·T, wrapping to 0 past the last whole window', () => {
    const B = 3;
    const T = 8;
    const starts = epochWindows(100, T, 5 * B, 0);
    // floor(99 / 8) = 12 whole windows of 9 bytes start at 0, 8, ..., 88.
    for (let s = 0; s < 5; s++) for (let i = 0; i < B; i++) expect(starts[s * B + i]).toBe((((s * B + i) % 12) * T));
    expect(Array.from(starts.subarray(9, 15))).toEqual([72, 80, 88, 0, 8, 16]);
    expect(epochWindows(100, T, 5 * B, 7)).toEqual(starts);
  });

  it('shuffled, the windows are torch.randint(n - T, (steps·B,)) from the epoch\'s generator: reproducible, in range, per epoch and seed', () => {
    const n = 10_000;
    const T = 16;
    const a = epochWindows(n, T, 640, 2, key);
    expect(epochWindows(n, T, 640, 2, key)).toEqual(a);
    const g = epochGenerator(2, key);
    expect(Array.from(a)).toEqual(Array.from({ length: 640 }, () => g.random() % (n - T)));
    expect(Math.max(...a)).toBeLessThanOrEqual(n - T - 1);
    // Drawing B per step (nanoGPT's get_batch) is drawing steps·B at once: a prefix stays a prefix.
    expect(epochWindows(n, T, 64, 2, key)).toEqual(a.subarray(0, 64));
    const same = (x: Uint32Array, y: Uint32Array) => x.reduce((c, v, i) => c + (v === y[i] ? 1 : 0), 0);
    // Independent draws from 9,984 starts agree about 0.06 times in 640; 5 would mean correlation.
    expect(same(a, epochWindows(n, T, 640, 3, key))).toBeLessThan(5);
    expect(same(a, epochWindows(n, T, 640, 2, { ...key, seed: 4 }))).toBeLessThan(5);
  });

  it('an epoch defaults to enough steps to cover the training bytes once, at least one', () => {
    expect(defaultStepsPerEpoch(1_000_001, 64, 256)).toBe(61);
    expect(defaultStepsPerEpoch(1984, 4, 8)).toBe(61);
    expect(defaultStepsPerEpoch(20, 4, 8)).toBe(1);
  });
});

describe('text feeds', () => {
  const d = textDataset(ramp(1000), 'f.txt', 'f.txt', { context: 8, valFraction: 0.1 });

  it('training: every batch full, filled from the epoch\'s windows', () => {
    const feed = textTrainFeed(d, 4, 10, key);
    expect([feed.batches, feed.exampleSize, feed.labelsPerExample, feed.sizes]).toEqual([10, 8, 8, [4]]);
    const x = new Float32Array(32);
    const labels = new Float32Array(32);
    feed.epoch(1)(3, x, labels);
    const starts = epochWindows(900, 8, 40, 1, key);
    const want = new Float32Array(32);
    const wantLabels = new Float32Array(32);
    fillWindows(d.train, starts, 12, 4, 8, want, wantLabels);
    expect(x).toEqual(want);
    expect(labels).toEqual(wantLabels);
  });

  it('evaluation: the held-out bytes as consecutive windows from their start, the last batch short', () => {
    // 100 held-out bytes: floor(99 / 8) = 12 windows, in batches of 5, 5 and 2.
    const feed = textEvalFeed(d, 5);
    expect([feed.batches, feed.sizes, feed.size(2)]).toEqual([3, [5, 2], 2]);
    const x = new Float32Array(40);
    const labels = new Float32Array(40);
    feed.epoch(0)(2, x, labels);
    expect(Array.from(x.subarray(0, 16))).toEqual(Array.from({ length: 16 }, (_, i) => (900 + 80 + i) % 256));
    expect(labels[15]).toBe((900 + 96) % 256);
  });
});

describe('bitsPerByte', () => {
  it('is the loss in nats over ln 2: a uniform guess over 256 bytes is 8 bits', () => {
    expect(bitsPerByte(Math.log(256))).toBeCloseTo(8, 12);
    expect(bitsPerByte(Math.LN2)).toBe(1);
  });
});

describe('the fewest bytes a message asks for', () => {
  it('is exactly the smallest text both of whose parts hold a window', () => {
    const fits = (n: number, T: number, f: number) => {
      try {
        textDataset(ramp(n), 'f.txt', 'f.txt', { context: T, valFraction: f });
        return true;
      } catch {
        return false;
      }
    };
    for (const [T, f] of [[8, 0.1], [3, 0.5], [16, 0.9], [5, 0.01], [1, 0.33]] as const) {
      let hint = '';
      try {
        textDataset(ramp(1), 'f.txt', 'f.txt', { context: T, valFraction: f });
      } catch (e) {
        hint = (e as { hint: string }).hint;
      }
      const fewest = Number(/at least ([\d,]+) bytes/.exec(hint)![1]!.replace(/,/g, ''));
      expect(fits(fewest, T, f)).toBe(true);
      expect(fits(fewest - 1, T, f)).toBe(false);
    }
  });
});
