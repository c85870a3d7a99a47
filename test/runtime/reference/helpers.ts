import { GraphBuilder } from '../../../src/ir/builder.ts';

/** mulberry32: a tiny seeded PRNG so every random shape and value in these tests is reproducible. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** Uniform integer in [lo, hi]. */
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    /** n values uniform in [lo, hi). */
    uniform: (n: number, lo = -1, hi = 1) => Array.from({ length: n }, () => lo + (hi - lo) * next()),
    /** n values with |v| in [lo, hi): keeps relu, div and friends away from their kinks and poles. */
    awayFromZero: (n: number, lo = 0.2, hi = 1.2) => Array.from({ length: n }, () => (next() < 0.5 ? -1 : 1) * (lo + (hi - lo) * next())),
    /**
     * n distinct values at least `gap` apart, shuffled: no ties, so a max is unique and a
     * finite-difference step of 1e-6 cannot change which element wins.
     */
    distinct: (n: number, gap = 0.05) => {
      const v = Array.from({ length: n }, (_, i) => (i - n / 2) * gap);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [v[i], v[j]] = [v[j]!, v[i]!];
      }
      return v;
    },
  };
}

export type Rng = ReturnType<typeof rng>;

/** A builder with one `param` leaf per entry; returns the builder and the leaves' node ids. */
export function withParams(shapes: Record<string, readonly number[]>): { b: GraphBuilder; id: Record<string, number> } {
  const b = new GraphBuilder();
  const id: Record<string, number> = {};
  for (const [name, shape] of Object.entries(shapes)) id[name] = b.op('param', [], { name, shape: [...shape] });
  return { b, id };
}
