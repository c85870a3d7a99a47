/**
 * PyTorch's CPU generator (`torch.manual_seed`, `torch.Generator`), draw for draw: MT19937
 * seeded with the seed's low 32 bits, and the three draws kiln needs in PyTorch's own arithmetic,
 * so `--seed S` gives the initial weights and batch order of a PyTorch script that starts with
 * `torch.manual_seed(S)` — the same bits, not merely the same distribution.
 *
 * It runs on the host only (initialisation, epoch shuffles). Device-side draws (dropout) stay
 * counter-based (rng.ts): PyTorch's own dropout masks differ between its CPU and CUDA builds, and
 * a sequential generator cannot feed parallel kernels.
 */

const N = 624;
const M = 397;
const TWO_63 = 1n << 63n;

export class TorchGenerator {
  private readonly state = new Uint32Array(N);
  private next = N;
  /** The second value of the last f64 Box–Muller pair, which PyTorch's generator keeps for the next draw. */
  private nextNormal: number | undefined;

  constructor(seed: number) {
    const s = this.state;
    s[0] = seed >>> 0;
    for (let j = 1; j < N; j++) s[j] = (Math.imul(1812433253, s[j - 1]! ^ (s[j - 1]! >>> 30)) + j) >>> 0;
  }

  /** 32 random bits (`generator->random()`). */
  random(): number {
    const s = this.state;
    if (this.next >= N) {
      for (let k = 0; k < N; k++) {
        const y = (s[k]! & 0x80000000) | (s[(k + 1) % N]! & 0x7fffffff);
        s[k] = s[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.next = 0;
    }
    let y = s[this.next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Throws away `n` draws of 32 bits. */
  skip(n: number): void {
    for (let i = 0; i < n; i++) this.random();
  }

  /** `torch.empty((), dtype=torch.int64).random_()`: two draws, the first the high word, mod 2^63. */
  randomInt64(): bigint {
    const hi = BigInt(this.random());
    return ((hi << 32n) | BigInt(this.random())) % TWO_63;
  }

  /**
   * One f32 element of `tensor.uniform_(from, to)`: 24 random bits scaled to [0, 1), then
   * x·(to − from) + from in f32 with a single rounding, as PyTorch's CPU kernel computes it (its
   * AVX2 build contracts the expression to a fused multiply-add; the unfused form differs in the
   * last bit for about 40% of draws).
   */
  uniform(from: number, to: number): number {
    const lo = Math.fround(from);
    const x = (this.random() & 0xffffff) * 2 ** -24;
    return fmaF32(x, Math.fround(Math.fround(to) - lo), lo);
  }

  /** `at::uniform_real_distribution<float>(0, 1)`: 24 random bits scaled to [0, 1). */
  uniform01f(): number {
    return (this.random() & 0xffffff) * 2 ** -24;
  }

  /**
   * One `at::normal_distribution<double>(0, 1)` draw: Box–Muller from two 53-bit uniforms
   * (each two draws, the first the high word), returning r·cos θ and keeping r·sin θ for the next
   * call, as PyTorch's CPU generator does. Host f64 log, sin and cos: glibc's and V8's agree but
   * for a rare last bit, which the f32 result hides.
   */
  normalDouble(): number {
    const kept = this.nextNormal;
    if (kept !== undefined) {
      this.nextNormal = undefined;
      return kept;
    }
    const u1 = this.uniform01d();
    const u2 = this.uniform01d();
    const r = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.nextNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  private uniform01d(): number {
    const hi = this.random() & 0x1fffff;
    return (hi * 2 ** 32 + this.random()) * 2 ** -53;
  }

  /**
   * One element of `torch.randint(high, size, generator=g)` on the CPU for high ≤ 2^32: one 32-bit
   * draw modulo high (ATen's random_from_to, serial in element order).
   */
  randint(high: number): number {
    if (!(Number.isInteger(high) && high >= 1 && high <= 2 ** 32)) throw new RangeError(`randint: high ${high} must be an integer in [1, 2^32]`);
    return this.random() % high;
  }

  /** `torch.randperm(n, generator=g)` on the CPU: PyTorch's forward Fisher–Yates. */
  randperm(n: number): Uint32Array {
    const r = new Uint32Array(n);
    for (let i = 0; i < n; i++) r[i] = i;
    for (let i = 0; i < n - 1; i++) {
      const z = i + (this.random() % (n - i));
      const t = r[i]!;
      r[i] = r[z]!;
      r[z] = t;
    }
    return r;
  }
}

/**
 * fma(a, b, c) rounded once to f32, for f32 a and b: a·b is exact in f64 (48 significant bits),
 * so only the addition rounds twice (to f64, then f32) — wrong only when the f64 sum lands exactly
 * halfway between two floats, which the addition's exact error then decides.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = Math.fround(s);
  if (r === s) return r;
  const other = 2 * s - r;
  if (Math.fround(other) !== other || s - r !== other - s) return r;
  const v = s - p;
  const err = p - (s - v) + (c - v);
  if (err === 0) return Math.fround(s);
  return err > 0 === other > s ? other : r;
}
