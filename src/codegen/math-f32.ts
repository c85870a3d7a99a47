/**
 * The f32 algorithms for exp, log, tanh and erf, written once for both code generators
 * (src/codegen/wasm-simd/math.ts emits them as f32x4 code, src/codegen/wgsl/math.ts as WGSL
 * helpers): the constants, thresholds and evaluation order live here so that the backends agree
 * to the rounding of each operation. Each constant stands for the f32 nearest it (written as the
 * shortest decimal that rounds to that f32): the wasm const and the WGSL hex literal both hold
 * exactly that f32.
 *
 * No step relies on a fused multiply-add: wasm SIMD without the relaxed proposal has none, and
 * the algorithms are chosen to meet their bounds with separately rounded products and sums.
 * Measured: at most 1 ulp each against f64 rounded to f32 (test/codegen/wasm-simd/math.test.ts).
 */

/**
 * exp(x) = 2^n · e^r, n = round(x·log2 e), r = x - n·ln 2 (Cephes expf). ln 2 is split in two
 * (Cody–Waite): C1 has 9 significant bits, so n·C1 is exact for |n| ≤ 2^15 and x - n·C1 is exact
 * (Sterbenz); C2 carries the rest. e^r on |r| ≤ ln2/2 is 1 + r + r²·P(r).
 */
export const EXP = {
  /** Inputs are clamped to [LO, HI] first: below LO the result rounds to 0, above HI to +Inf, and
   * 2^n then stays within what two f32 scale factors can hold (n ∈ [-150, 128]). */
  LO: -104,
  HI: 89,
  LOG2E: 1.442695,
  C1: 0.693359375,
  C2: -0.00021219444,
  /** P(r), highest degree first (Cephes expf). */
  P: [0.00019875691, 0.0013981999, 0.008333452, 0.041665796, 0.16666666, 0.5],
} as const;

/**
 * log(x) = e·ln 2 + log(1 + f), x = 2^e·m with m ∈ [√½, √2) and f = m - 1 (Cephes logf):
 * log(1 + f) = f - f²/2 + f³·P(f), and e·ln 2 is added in two parts (the Cody–Waite C1, C2 of
 * EXP) so the large term is exact. Subnormal x are scaled by 2^23 first (their exponent field
 * is 0, so frexp by bits would be wrong).
 */
export const LOG = {
  /** Smallest normal f32: below it (and above 0) x is scaled by 2^23. */
  MIN_NORMAL: 1.1754944e-38,
  SCALE: 8388608,
  SQRT_HALF: 0.70710677,
  /** P(f), highest degree first (Cephes logf). */
  P: [0.070376836, -0.1151461, 0.116769984, -0.12420141, 0.14249323, -0.16668057, 0.20000714, -0.24999994, 0.3333333],
} as const;

/**
 * tanh(x): for |x| < SMALL the odd polynomial x + x³·P(x²) (Cephes tanhf), where the exp form
 * below would cancel; otherwise sign(x)·(1 - 2/(e^(2a) + 1)), a = min(|x|, CLAMP). tanh rounds
 * to 1 in f32 from |x| = 9.01 on, so the clamp changes no result, and keeps every intermediate
 * finite (e^20 = 4.9e8): no Inf/Inf as sinh/cosh would compute, no reliance on a GPU's
 * arithmetic with infinities.
 */
export const TANH = {
  SMALL: 0.625,
  CLAMP: 10,
  /** P(x²), highest degree first (Cephes tanhf). */
  P: [-0.0057049887, 0.020639088, -0.053739715, 0.13331442, -0.3333328],
} as const;

/**
 * erf(x), the two-interval scheme of ARM's optimized-routines erff with coefficients fitted here
 * for evaluation without FMA (Lawson's iteration towards minimax, scripts/fit-erf.py):
 * - |x| < SMALL: x + x·S(x²), S(0) ≈ 2/√π - 1, so the leading term is x itself, exact;
 * - otherwise 1 - e^(-q), q = a + a·L(a) ≈ -log(erfc(a)), a = min(|x|, 4), sign restored: at
 *   a = 4, erfc < 2^-25, so erf rounds to 1 and the clamp saturates without a separate branch.
 * The fits' own errors, before the coefficients are rounded to f32, are 0.26·2^-24 (S, relative)
 * and 0.05·2^-24 (L, in erf).
 */
export const ERF = {
  SMALL: 0.921875,
  CLAMP: 4,
  /** S(s), s = x², highest degree first. */
  S: [-0.0006013375, 0.0049979985, -0.02677023, 0.11281927, -0.37612507, 0.12837915],
  /** L(a), highest degree first. */
  L: [-0.00021347008, 0.003210797, -0.022876931, 0.10524202, 0.63573295, 0.12851016],
} as const;
