import { ERF, EXP, LOG, TANH } from '../math-f32.ts';

/**
 * exp, log, tanh and erf as WGSL helper functions, the algorithms of the wasm backend
 * (src/codegen/math-f32.ts, step for step in the same order), so both backends agree to the
 * rounding of each operation where the GPU rounds as IEEE does.
 *
 * Why not the builtins: WGSL has no erf; its tanh may be computed as sinh/cosh, Inf/Inf = NaN
 * for large |x| on some drivers; and its exp and log are only specified to 3 + 2|x| ulp and
 * 2^-21 absolute, so an erf built on the builtin exp would differ from the wasm one by more than
 * rounding. A shader that uses one of these includes `MATH_WGSL` (or the functions it names)
 * once, ahead of its entry point.
 *
 * Special values are decided by integer tests on the bits, not by float compares or min/max: WGSL
 * lets an implementation assume there are no NaN or Inf operands, and a compiler may fold
 * `x != x` to false. Two things are outside the code's control and may make a GPU's result
 * differ from the wasm one: a compiler fusing a multiply and an add into an FMA (more accurate,
 * differently rounded), and flushing subnormals to zero (which WGSL allows).
 */

/**
 * The f32 nearest v (as the wasm backend's Float32Array constants hold it) as a WGSL hex float
 * literal: exact, so no decimal rounding choice is left to the shader compiler.
 */
export function wgslF32(v0: number): string {
  const v = Math.fround(v0);
  if (!Number.isFinite(v)) throw new Error(`wgslF32: ${v0} is not a finite f32`);
  if (v === 0) return Object.is(v, -0) ? '-0.0f' : '0.0f';
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  const exp = ((bits >>> 23) & 0xff) - 127;
  if (exp === -127) throw new Error(`wgslF32: ${v} is subnormal`);
  const frac = ((bits & 0x7fffff) << 1).toString(16).padStart(6, '0');
  return `${bits >>> 31 ? '-' : ''}0x1.${frac}p${exp}f`;
}

/** Horner's rule as text: ((c0·v + c1)·v + c2)…, c highest degree first, as the wasm `horner`. */
function horner(v: string, c: readonly number[]): string {
  let p = wgslF32(c[0]!);
  for (const k of c.slice(1)) p = `(${p} * ${v} + ${wgslF32(k)})`;
  return p;
}

const F = wgslF32;

/** The helpers every function here uses: NaN test and sign transfer on bits. */
export const MATH_BITS_WGSL = `fn is_nan_f32(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn with_sign_of(a: f32, s: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(a) | (bitcast<u32>(s) & 0x80000000u));
}
`;

/** e^x: clamp, Cody–Waite reduction, polynomial, 2^n as two exponent-field factors. */
export const EXP_WGSL = `fn exp_f32(x0: f32) -> f32 {
  if (is_nan_f32(x0)) { return x0; }
  let x = clamp(x0, ${F(EXP.LO)}, ${F(EXP.HI)});
  let n = round(x * ${F(EXP.LOG2E)});
  let r = (x - n * ${F(EXP.C1)}) - n * ${F(EXP.C2)};
  let p = ((${horner('r', EXP.P)} * (r * r)) + r) + 1.0f;
  let ni = i32(n);
  let n1 = ni >> 1u;
  return (p * bitcast<f32>((n1 + 127) << 23u)) * bitcast<f32>((ni - n1 + 127) << 23u);
}
`;

/** ln x: frexp by bits (subnormals scaled by 2^23 first), polynomial, e·ln 2 in two parts. */
export const LOG_WGSL = `fn log_f32(x: f32) -> f32 {
  let u = bitcast<u32>(x);
  // ±0 → -Inf; negative, -Inf or NaN → NaN; +Inf → +Inf. Built from u at run time: Tint rejects
  // a constant bitcast to Inf or NaN ("value -inf cannot be represented as 'f32'").
  if ((u & 0x7fffffffu) == 0u) { return bitcast<f32>(u | 0xff800000u); }
  if (u >= 0x7f800000u) { return select(bitcast<f32>(u | 0x7fc00000u), x, u == 0x7f800000u); }
  let sub = x < ${F(LOG.MIN_NORMAL)};
  let bits = bitcast<i32>(select(x, x * ${F(LOG.SCALE)}, sub));
  let mant = bitcast<f32>((bits & 0x007fffff) | 0x3f000000);
  let low = mant < ${F(LOG.SQRT_HALF)};
  let ef = f32((bits >> 23u) - select(0, 1, low) - select(0, 23, sub) - 126);
  let f = select(mant, mant + mant, low) - 1.0f;
  let z = f * f;
  var y = (${horner('f', LOG.P)} * f) * z;
  y = y + ef * ${F(EXP.C2)};
  y = y + z * ${F(-0.5)};
  return (f + y) + ef * ${F(EXP.C1)};
}
`;

/** tanh x: odd polynomial near 0, 1 - 2/(e^(2a) + 1) elsewhere, the sign put back on the bits. */
export const TANH_WGSL = `fn tanh_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) { return x; }
  let a = abs(x);
  let z = a * a;
  let small = ((${horner('z', TANH.P)} * z) * a) + a;
  let c = min(a, ${F(TANH.CLAMP)});
  let big = 1.0f - 2.0f / (exp_f32(c + c) + 1.0f);
  return with_sign_of(select(big, small, a < ${F(TANH.SMALL)}), x);
}
`;

/** erf x: x + x·S(x²) near 0, 1 - e^(-q(a)) elsewhere, saturating to ±1 at |x| = 4. */
export const ERF_WGSL = `fn erf_f32(x: f32) -> f32 {
  if (is_nan_f32(x)) { return x; }
  let a = abs(x);
  let s = x * x;
  let small = (${horner('s', ERF.S)} * x) + x;
  let c = min(a, ${F(ERF.CLAMP)});
  let q = (${horner('c', ERF.L)} * c) + c;
  let big = with_sign_of(1.0f - exp_f32(-q), x);
  return select(big, small, a < ${F(ERF.SMALL)});
}
`;

/** All of the above, in dependency order: one block to put ahead of a shader's entry point. */
export const MATH_WGSL = [MATH_BITS_WGSL, EXP_WGSL, LOG_WGSL, TANH_WGSL, ERF_WGSL].join('\n');
