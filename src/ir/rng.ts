/**
 * Counter-based random numbers for the kernels: every draw is a pure function of (seed, stream,
 * counter, index), so dropout masks are identical on every backend, computed in parallel, and
 * reproducible from the seed alone, with no generator state to checkpoint. (Host-side draws —
 * initial weights, epoch orders — follow PyTorch's generator instead:
 * src/runtime/torch-generator.ts.)
 *
 * Built from MurmurHash3's 32-bit finaliser (a bijection with full avalanche) using only u32
 * multiply, xor, add and shift. The hash is written once, over an abstract u32 algebra that each
 * backend instantiates: JavaScript numbers here, binaryen expressions (src/codegen/wasm-simd) and
 * WGSL statements (src/codegen/wgsl), so the three cannot drift apart.
 */

/** u32 arithmetic with wrap-around, as Math.imul and WGSL's u32 multiply do. */
export interface U32Ops<T> {
  lit(v: number): T;
  xor(a: T, b: T): T;
  mul(a: T, b: T): T;
  add(a: T, b: T): T;
  /** Logical shift right by a constant. */
  shr(a: T, bits: number): T;
  /** A value used more than once: backends building expression trees bind it to a variable. */
  share(a: T): T;
}

/** Streams used by the kernels, and by the host's augmentation (data/augment.ts); dropout site k uses DROPOUT + k. */
export const Stream = { AUGMENT: 1, DROPOUT: 1000 } as const;

const SALT = { seed: 0x9e3779b9, stream: 0x27d4eb2f, counter: 0x165667b1, index: 0x6a09e667 } as const;

export function fmix32<T>(o: U32Ops<T>, h0: T): T {
  const step = (h: T, bits: number) => {
    const s = o.share(h);
    return o.xor(s, o.shr(s, bits));
  };
  let h = o.mul(step(h0, 16), o.lit(0x85ebca6b));
  h = o.mul(step(h, 13), o.lit(0xc2b2ae35));
  return step(h, 16);
}

/** Key for one sequence of draws: a (seed, stream, counter) triple hashed once. */
export function streamKey<T>(o: U32Ops<T>, seed: T, stream: T, counter: T): T {
  const one = o.lit(1);
  let h = fmix32(o, o.xor(seed, o.lit(SALT.seed)));
  h = fmix32(o, o.xor(h, o.mul(o.add(stream, one), o.lit(SALT.stream))));
  return fmix32(o, o.xor(h, o.mul(o.add(counter, one), o.lit(SALT.counter))));
}

/** 32 random bits for element `index` of the sequence `key`; distinct indices never collide. */
export function randomBits<T>(o: U32Ops<T>, key: T, index: T): T {
  return fmix32(o, o.xor(key, fmix32(o, o.add(index, o.lit(SALT.index)))));
}

/** The algebra on JavaScript numbers (u32 in a double). */
export const JS_U32: U32Ops<number> = {
  lit: (v) => v >>> 0,
  xor: (a, b) => (a ^ b) >>> 0,
  mul: (a, b) => Math.imul(a, b) >>> 0,
  add: (a, b) => (a + b) >>> 0,
  shr: (a, bits) => a >>> bits,
  share: (a) => a,
};

/**
 * The 24 high bits of element `index`'s draw: an integer in [0, 2^24), exact in f32, so a
 * Bernoulli test `bits24 >= ceil(p·2^24)` is the same on every backend.
 */
export function randomBits24(seed: number, stream: number, counter: number, index: number): number {
  return randomBits(JS_U32, streamKey(JS_U32, seed >>> 0, stream >>> 0, counter >>> 0), index >>> 0) >>> 8;
}
