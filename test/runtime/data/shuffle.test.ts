import { describe, expect, it } from 'vitest';
import { batchBounds, epochOrder, numBatches } from '../../../src/runtime/data/shuffle.ts';

function isPermutation(a: Uint32Array): boolean {
  const seen = new Uint8Array(a.length);
  for (const v of a) {
    if (v >= a.length || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

describe('epochOrder', () => {
  const key = (seed: number, initDraws = 100) => ({ seed, initDraws });

  it('is a deterministic permutation of (seed, initDraws, epoch)', () => {
    const a = epochOrder(60000, 3, key(42));
    expect(isPermutation(a)).toBe(true);
    expect(epochOrder(60000, 3, key(42))).toEqual(a);
  });

  it('differs between epochs, seeds and models (initialisation draws)', () => {
    const e0 = epochOrder(1000, 0, key(7));
    const same = (x: Uint32Array, y: Uint32Array) => x.reduce((n, v, i) => n + (v === y[i] ? 1 : 0), 0);
    // Two independent permutations of 1000 agree in about 1 position; 20 would mean correlation.
    for (const other of [epochOrder(1000, 1, key(7)), epochOrder(1000, 0, key(8)), epochOrder(1000, 0, key(7, 101))]) expect(same(e0, other)).toBeLessThan(20);
  });

  it('is the identity without shuffle', () => {
    expect(Array.from(epochOrder(5, 9))).toEqual([0, 1, 2, 3, 4]);
  });

  it('handles 0 and 1 samples', () => {
    expect(epochOrder(0, 0, key(1)).length).toBe(0);
    expect(Array.from(epochOrder(1, 0, key(1)))).toEqual([0]);
  });

  it('puts each element in each position about equally often', () => {
    // 3 elements, 6000 epochs: each (value, position) count ~2000, sd ~37; 200 off is > 5 sd.
    const counts = new Array(9).fill(0);
    for (let e = 0; e < 6000; e++) {
      const o = epochOrder(3, e, key(1));
      for (let p = 0; p < 3; p++) counts[o[p]! * 3 + p]++;
    }
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(200);
  });
});

describe('batches', () => {
  it('keeps the final partial batch, like DataLoader(drop_last=False)', () => {
    expect(numBatches(60000, 64)).toBe(938);
    expect(numBatches(128, 64)).toBe(2);
    expect(numBatches(0, 64)).toBe(0);
    expect(batchBounds(937, 60000, 64)).toEqual({ start: 59968, size: 32 });
    expect(batchBounds(0, 60000, 64)).toEqual({ start: 0, size: 64 });
    expect(() => numBatches(10, 0)).toThrow(/positive integer/);
  });
});
