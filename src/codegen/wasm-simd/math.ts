import { ERF, EXP, LOG, TANH } from '../math-f32.ts';
import type { Emitter, Fn, Local, X } from './emitter.ts';

/**
 * exp, log, tanh and erf as f32x4 code inside the module (the algorithms and their constants:
 * src/codegen/math-f32.ts), so an elementwise kernel computes them four lanes at a time instead
 * of calling the host's Math.exp once per element.
 *
 * Each function takes an f32x4 expression, evaluates it once, and returns one v128 expression
 * (a block: temporaries into fresh v128 locals of `fn`, then the value). Products and sums are
 * always separate f32x4.mul and f32x4.add, never `e.madd`, so a module built for relaxed SIMD
 * computes the same bits as one without. Measured error bounds: test/codegen/wasm-simd/math.test.ts.
 */

/** A unary f32x4 function: an f32x4 expression in, an f32x4 expression out. */
export type VUnary = (e: Emitter, fn: Fn, x: X) => X;

/** Statements that set locals, then a value: one block expression of type v128. */
class Seq {
  private readonly stmts: X[] = [];
  constructor(
    readonly e: Emitter,
    private readonly fn: Fn,
  ) {}
  /** x into a new local; returns a getter (each call is a fresh local.get, usable once more). */
  let(x: X): () => X {
    const l = this.fn.v128();
    this.stmts.push(l.set(x));
    return () => l.get();
  }
  /** x into a new local, returned itself (for `when`). */
  local(x: X): Local {
    const l = this.fn.v128();
    this.stmts.push(l.set(x));
    return l;
  }
  /** if (cond) target = value. */
  when(cond: X, target: Local, value: X): void {
    this.stmts.push(this.e.m.if(cond, target.set(value)));
  }
  value(x: X): X {
    return this.e.m.block(null, [...this.stmts, x], this.e.b.v128);
  }
}

/** i32x4 with n in every lane. */
function iconst(e: Emitter, n: number): X {
  return e.m.v128.const(new Uint8Array(new Int32Array([n, n, n, n]).buffer));
}

/** Horner: ((c0·x + c1)·x + c2)… with c highest degree first; `x` yields the variable again. */
function horner(e: Emitter, x: () => X, c: readonly number[]): X {
  let p = e.vconst(c[0]!);
  for (const k of c.slice(1)) p = e.vadd(e.vmul(p, x()), e.vconst(k));
  return p;
}

/** 2^n for i32x4 n in [-126, 127]: n + 127 shifted into the exponent field. */
function pow2i(e: Emitter, n: X): X {
  return e.m.i32x4.shl(e.m.i32x4.add(n, iconst(e, 127)), e.i32(23));
}

/** a with the sign bit of s: |a| | (s & 0x80000000); a must be ≥ 0 or NaN. */
function withSignOf(e: Emitter, a: X, s: X): X {
  return e.m.v128.or(a, e.m.v128.and(s, iconst(e, -0x80000000)));
}

/** e^x (Cephes expf): max error 1 ulp; NaN → NaN, -Inf → 0, +Inf → +Inf. */
export const vexp: VUnary = (e, fn, x0) => {
  const m = e.m;
  const s = new Seq(e, fn);
  // The clamp with pmax/pmin (one instruction each; f32x4.max/min are several in V8): the
  // comparisons are false for NaN, which then passes through, as through max/min.
  const x = s.let(m.f32x4.pmin(m.f32x4.pmax(x0, e.vconst(EXP.LO)), e.vconst(EXP.HI)));
  // n = round(x·log2 e), ties to even, as f32x4.nearest: adding 1.5·2^23 rounds away the
  // fraction (|x·log2 e| < 2^22), and the sum's low bits are n as an integer.
  const t = s.let(e.vadd(e.vmul(x(), e.vconst(EXP.LOG2E)), e.vconst(ROUNDER)));
  const n = s.let(e.vsub(t(), e.vconst(ROUNDER)));
  const r = s.let(e.vsub(e.vsub(x(), e.vmul(n(), e.vconst(EXP.C1))), e.vmul(n(), e.vconst(EXP.C2))));
  // 1 + r + r²·P(r), summed from the small end.
  const p = e.vadd(e.vadd(e.vmul(horner(e, r, EXP.P), e.vmul(r(), r())), r()), e.vconst(1));
  // 2^n as two factors 2^⌊n/2⌋·2^(n-⌊n/2⌋), each a normal f32 for n ∈ [-150, 128]: the product
  // overflows to +Inf or rounds into the subnormals once, at the last multiply, as exp should.
  const ni = s.let(m.i32x4.sub(t(), iconst(e, ROUNDER_BITS)));
  const n1 = s.let(m.i32x4.shr_s(ni(), e.i32(1)));
  return s.value(e.vmul(e.vmul(p, pow2i(e, n1())), pow2i(e, m.i32x4.sub(ni(), n1()))));
};

/** 1.5·2^23, and its bit pattern: x + ROUNDER holds round(x) in its low mantissa bits. */
const ROUNDER = 12582912;
const ROUNDER_BITS = 0x4b400000;

/** ln x (Cephes logf): max error 1 ulp; 0 → -Inf, x < 0 → NaN, +Inf → +Inf, NaN → NaN. */
export const vlog: VUnary = (e, fn, x0) => {
  const m = e.m;
  const s = new Seq(e, fn);
  const x = s.let(x0);
  // Subnormals (and, harmlessly, x ≤ 0, fixed at the end) scaled by 2^23 into the normals.
  const sub = s.let(m.f32x4.lt(x(), e.vconst(LOG.MIN_NORMAL)));
  const bits = s.let(m.v128.bitselect(e.vmul(x(), e.vconst(LOG.SCALE)), x(), sub()));
  // x = 2^e·m, m ∈ [0.5, 1): the exponent field less 126, the mantissa with exponent 2^-1.
  const mant = s.let(m.v128.or(m.v128.and(bits(), iconst(e, 0x007fffff)), iconst(e, 0x3f000000)));
  const low = s.let(m.f32x4.lt(mant(), e.vconst(LOG.SQRT_HALF)));
  // m < √½: use 2m and e - 1 (the mask is -1 in those lanes), so f = m - 1 ∈ [√½ - 1, √2 - 1).
  const ex = m.i32x4.sub(m.i32x4.add(m.i32x4.shr_s(bits(), e.i32(23)), low()), m.v128.and(sub(), iconst(e, 23)));
  const ef = s.let(m.f32x4.convert_i32x4_s(m.i32x4.sub(ex, iconst(e, 126))));
  const f = s.let(e.vsub(m.v128.bitselect(e.vadd(mant(), mant()), mant(), low()), e.vconst(1)));
  const z = s.let(e.vmul(f(), f()));
  let y = e.vmul(e.vmul(horner(e, f, LOG.P), f()), z());
  y = e.vadd(y, e.vmul(ef(), e.vconst(EXP.C2)));
  y = e.vadd(y, e.vmul(z(), e.vconst(-0.5)));
  const r = s.let(e.vadd(e.vadd(f(), y), e.vmul(ef(), e.vconst(EXP.C1))));
  let out = m.v128.bitselect(e.vconst(Infinity), r(), m.f32x4.eq(x(), e.vconst(Infinity)));
  out = m.v128.bitselect(e.vconst(-Infinity), out, m.f32x4.eq(x(), e.vzero()));
  // Not (x ≥ 0): negative or NaN.
  return s.value(m.v128.bitselect(out, e.vconst(NaN), m.f32x4.ge(x(), e.vzero())));
};

/** tanh x: max error 1 ulp; saturates to ±1, keeps ±0, NaN → NaN. */
export const vtanh: VUnary = (e, fn, x0) => {
  const m = e.m;
  const s = new Seq(e, fn);
  const x = s.let(x0);
  // Both forms on |x|, the sign put back once: tanh(-0) is -0 (x + x³·P(x²) on x = -0 would
  // give +0, as P(0) < 0), and tanh(-x) = -tanh(x) bit for bit.
  const a = s.let(m.f32x4.abs(x()));
  const z = s.let(e.vmul(a(), a()));
  const out = s.local(e.vadd(e.vmul(e.vmul(horner(e, z, TANH.P), z()), a()), a()));
  // NaN fails |x| < SMALL and takes the exp form, which keeps it NaN; the exp form is computed
  // only when a lane needs it (the same bits either way).
  const small = s.let(m.f32x4.lt(a(), e.vconst(TANH.SMALL)));
  const c = s.let(m.f32x4.pmin(a(), e.vconst(TANH.CLAMP)));
  const big = () => e.vsub(e.vconst(1), e.vdiv(e.vconst(2), e.vadd(vexp(e, fn, e.vadd(c(), c())), e.vconst(1))));
  s.when(m.i32.eqz(m.i32x4.all_true(small())), out, m.v128.bitselect(out.get(), big(), small()));
  return s.value(withSignOf(e, out.get(), x()));
};

/**
 * erf x: max error 1 ulp; saturates to ±1 (exactly from |x| = 4 on), keeps ±0 (x + x·S(x²) with
 * S > 0), NaN → NaN. The exp form is computed only when a lane needs it (GELU's inputs are mostly
 * below SMALL): the same bits either way.
 */
export const verf: VUnary = (e, fn, x0) => {
  const m = e.m;
  const s = new Seq(e, fn);
  const x = s.let(x0);
  const a = s.let(m.f32x4.abs(x()));
  const x2 = s.let(e.vmul(x(), x()));
  const out = s.local(e.vadd(e.vmul(horner(e, x2, ERF.S), x()), x()));
  // Not (|x| < SMALL): large or NaN lanes, which the exp form keeps NaN.
  const small = s.let(m.f32x4.lt(a(), e.vconst(ERF.SMALL)));
  const c = () => m.f32x4.pmin(a(), e.vconst(ERF.CLAMP));
  const big = (): X => {
    const q = e.vadd(e.vmul(horner(e, c, ERF.L), c()), c());
    return withSignOf(e, e.vsub(e.vconst(1), vexp(e, fn, m.f32x4.neg(q))), x());
  };
  s.when(m.i32.eqz(m.i32x4.all_true(small())), out, m.v128.bitselect(out.get(), big(), small()));
  return s.value(out.get());
};

/** The functions by name, for an expression compiler's primitive table. */
export const VMATH = { exp: vexp, log: vlog, tanh: vtanh, erf: verf } as const satisfies Record<string, VUnary>;
