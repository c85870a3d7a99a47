/**
 * The sample order of each epoch, PyTorch's: that of a script which calls
 * `torch.manual_seed(seed)`, builds the model (its initialisation takes `initDraws` draws), then
 * every epoch iterates `DataLoader(train, shuffle=True)` and then the test set's DataLoader.
 * Each epoch takes three int64 draws from the global generator — the train iterator's worker
 * base seed, its RandomSampler's seed, the test iterator's base seed — and the sampler runs
 * randperm on a fresh generator seeded with its draw. So epoch e's order is a pure function of
 * (seed, initDraws, e): a resumed run needs no generator state, and every backend sees the same
 * batches. (A PyTorch model with dropout also draws from the global generator while it trains,
 * so from the second epoch on its orders differ from these; kiln's dropout is counter-based.)
 */
import { TorchGenerator } from '../torch-generator.ts';

const DRAWS_PER_EPOCH = 6;

export interface ShuffleSeed {
  seed: number;
  initDraws: number;
}

/** A permutation of 0..count-1 for `epoch`; the identity without a shuffle seed. */
export function epochOrder(count: number, epoch: number, shuffle?: ShuffleSeed): Uint32Array {
  if (!shuffle) return Uint32Array.from({ length: count }, (_, i) => i);
  return epochGenerator(epoch, shuffle).randperm(count);
}

/** The fresh generator epoch `epoch`'s RandomSampler draws its order from, seeded as described above. */
export function epochGenerator(epoch: number, shuffle: ShuffleSeed): TorchGenerator {
  const global = new TorchGenerator(shuffle.seed);
  global.skip(shuffle.initDraws + DRAWS_PER_EPOCH * epoch);
  global.randomInt64();
  // Generator.manual_seed keeps the low 32 bits of its 64-bit seed.
  return new TorchGenerator(Number(global.randomInt64() & 0xffffffffn));
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
