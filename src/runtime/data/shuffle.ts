/**
 * The sample order of each epoch: a Fisher-Yates shuffle whose draws are counter-based
 * (seed, SHUFFLE stream, epoch → key; swap position → bits), so epoch e's order is a pure
 * function of (seed, e) — a resumed run needs no generator state, and every backend sees the
 * same batches.
 */
import { Stream, randomBits, streamKey } from '../rng.ts';

const TWO_32 = 2 ** 32;

/** A permutation of 0..count-1 (identity when `shuffle` is false). */
export function epochOrder(count: number, seed: number, epoch: number, shuffle: boolean): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  if (!shuffle) return order;
  const key = streamKey(seed, Stream.SHUFFLE, epoch);
  for (let i = count - 1; i > 0; i--) {
    // A 32-bit draw scaled to [0, i]: bias is at most (i+1)/2^32, far below anything measurable.
    const j = Math.floor((randomBits(key, i) / TWO_32) * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** Batches per epoch, the last one partial (PyTorch DataLoader with drop_last=False). */
export function numBatches(count: number, batchSize: number): number {
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`batch size ${batchSize} must be a positive integer`);
  return Math.ceil(count / batchSize);
}

/** Start and size of batch `b` within an epoch order of `count` samples. */
export function batchBounds(b: number, count: number, batchSize: number): { start: number; size: number } {
  const start = b * batchSize;
  return { start, size: Math.max(0, Math.min(batchSize, count - start)) };
}
