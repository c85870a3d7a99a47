/**
 * Counter-based random numbers for the kernels: every draw is a pure function of (seed, stream,
 * counter, index), so dropout masks are identical on every backend, computed in parallel, and
 * reproducible from the seed alone, with no generator state to checkpoint. (Host-side draws —
 * initial weights, epoch orders — follow PyTorch's generator instead: torch-generator.ts.)
 *
 * Built from MurmurHash3's 32-bit finaliser (a bijection with full avalanche) using only u32
 * multiply, xor and shift, so the WGSL and wasm kernels compute the same bits.
 */

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Key for one sequence of draws: a (seed, stream, counter) triple hashed once. */
export function streamKey(seed: number, stream: number, counter: number): number {
  let h = fmix32((seed ^ 0x9e3779b9) >>> 0);
  h = fmix32((h ^ Math.imul(stream + 1, 0x27d4eb2f)) >>> 0);
  return fmix32((h ^ Math.imul(counter + 1, 0x165667b1)) >>> 0);
}

/** 32 random bits for element `index` of the sequence `key`; distinct indices never collide. */
export function randomBits(key: number, index: number): number {
  return fmix32((key ^ fmix32((index + 0x6a09e667) >>> 0)) >>> 0);
}

/** Uniform in [0, 1) with 24 bits, exactly representable in f32. */
export function uniform(key: number, index: number): number {
  return (randomBits(key, index) >>> 8) * 5.960464477539063e-8;
}

/** Streams used by the kernels; dropout site k uses DROPOUT + k. */
export const Stream = { DROPOUT: 1000 } as const;
