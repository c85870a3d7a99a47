/**
 * The error function in f64, for the reference backend and as the truth the f32 kernels are
 * measured against (JavaScript has no Math.erf). Accurate to a few f64 ulps (|error| < 1e-15,
 * measured against mpmath in test/ir/erf.test.ts).
 *
 * Classical expansions, each used where it converges fast and adds no cancellation:
 * - |x| < 0.5: the Taylor series 2/√π · x · Σ (-x²)^n / (n!·(2n+1)); its terms fall by x²/n < 1/4.
 * - 0.5 ≤ |x| < 2: erf(x) = 2/√π · x·e^(-x²) · Σ (2x²)^n / (1·3·…·(2n+1)). Every term is
 *   positive, so nothing cancels; the sum is compensated (Kahan), which halves the error near 2
 *   (9 → 4 f64 ulps against mpmath); at most ~45 terms.
 * - |x| ≥ 2: erf(x) = 1 - erfc(x), erfc(x) = e^(-x²)/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …)))),
 *   the Laplace continued fraction, evaluated by the modified Lentz method; erfc(2) < 0.005, so
 *   its own relative error hardly shows in erf.
 * e^(-x²) is computed as e^(-h²)·e^(-(x-h)(x+h)) with h = x rounded to f32: h² is exact in f64,
 * so the rounding of x² (up to 2e-15 relative in e^(-x²) at x = 6) does not reach the result.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/** e^(-x²) without the rounding error of x². */
function expMinusSquare(x: number): number {
  const h = Math.fround(x);
  return Math.exp(-h * h) * Math.exp(-(x - h) * (x + h));
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  // erfc(6) = 2e-17 < half an ulp of 1: erf is ±1 from there on (and for ±Inf).
  if (a >= 6) return Math.sign(x);
  if (a < 0.5) {
    const z = -x * x;
    let power = 1;
    let sum = 1;
    for (let n = 1; Math.abs(power) > 1e-18; n++) {
      power *= z / n;
      sum += power / (2 * n + 1);
    }
    // x multiplies last, so tiny and subnormal x give 2x/√π without underflow on the way.
    return TWO_OVER_SQRT_PI * sum * x;
  }
  if (a < 2) {
    const s2 = 2 * a * a;
    let term = 1;
    let sum = 1;
    let carry = 0;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term = (term * s2) / (2 * n + 1);
      const y = term - carry;
      const t = sum + y;
      carry = t - sum - y;
      sum = t;
    }
    return TWO_OVER_SQRT_PI * (expMinusSquare(a) * sum) * x;
  }
  return Math.sign(x) * (1 - erfc(a));
}

/** erfc(a) for a ≥ 2 by the continued fraction (modified Lentz). */
function erfc(a: number): number {
  const tiny = 1e-300;
  let f = a;
  let c = a;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const an = n / 2;
    d = a + an * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = a + an / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (ONE_OVER_SQRT_PI * expMinusSquare(a)) / f;
}
