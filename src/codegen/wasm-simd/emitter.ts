import type binaryenNs from 'binaryen';

/**
 * A thin layer over binaryen's expression API for the kernel generators: typed locals, counted
 * loops, 128-bit vector loads and stores with partial (tail) variants, and the fused multiply-add
 * that becomes `f32x4.relaxed_madd` when the module is built for relaxed SIMD.
 *
 * binaryen is imported lazily (it costs ~0.4 s and uses top-level await): `loadBinaryen()` once,
 * then everything here is synchronous.
 */
export type Binaryen = typeof binaryenNs;
/** A binaryen expression. */
export type X = number;

let lib: Binaryen | undefined;
let loading: Promise<Binaryen> | undefined;

export function loadBinaryen(): Promise<Binaryen> {
  loading ??= import('binaryen').then((m) => (lib = m.default));
  return loading;
}

export function binaryenLoaded(): Binaryen {
  if (!lib) throw new Error('binaryen is not loaded: await loadBinaryen() first');
  return lib;
}

export interface EmitOptions {
  /** Emit f32x4.relaxed_madd (one fused instruction) instead of f32x4.mul + f32x4.add. */
  relaxed: boolean;
  /** Threads the module is built for: kernels split their work `threads` ways. */
  threads: number;
}

/** A local variable of a function under construction. */
export class Local {
  constructor(
    private readonly e: Emitter,
    readonly index: number,
    readonly type: number,
  ) {}
  get(): X {
    return this.e.m.local.get(this.index, this.type);
  }
  set(v: X): X {
    return this.e.m.local.set(this.index, v);
  }
  tee(v: X): X {
    return this.e.m.local.tee(this.index, v, this.type);
  }
}

/** The locals of one function: parameters first, then variables in order of creation. */
export class Fn {
  readonly vars: number[] = [];
  readonly params: Local[];
  constructor(
    private readonly e: Emitter,
    paramTypes: readonly number[],
  ) {
    this.params = paramTypes.map((t, i) => new Local(e, i, t));
  }
  private add(type: number): Local {
    this.vars.push(type);
    return new Local(this.e, this.params.length + this.vars.length - 1, type);
  }
  i32(): Local {
    return this.add(this.e.b.i32);
  }
  f32(): Local {
    return this.add(this.e.b.f32);
  }
  f64(): Local {
    return this.add(this.e.b.f64);
  }
  v128(): Local {
    return this.add(this.e.b.v128);
  }
}

export class Emitter {
  readonly b: Binaryen;
  readonly m: binaryenNs.Module;
  private labels = 0;

  constructor(
    lib: Binaryen,
    readonly opts: EmitOptions,
  ) {
    this.b = lib;
    this.m = new lib.Module();
  }

  get T(): number {
    return this.opts.threads;
  }

  label(prefix: string): string {
    return `${prefix}${this.labels++}`;
  }

  // --- scalars -------------------------------------------------------------------------------
  i32(n: number): X {
    return this.m.i32.const(n | 0);
  }
  f32(n: number): X {
    return this.m.f32.const(n);
  }
  f64(n: number): X {
    return this.m.f64.const(n);
  }
  add(a: X, b: X): X {
    return this.m.i32.add(a, b);
  }
  sub(a: X, b: X): X {
    return this.m.i32.sub(a, b);
  }
  mul(a: X, b: X): X {
    return this.m.i32.mul(a, b);
  }
  /** a + n, folding n = 0. */
  addc(a: X, n: number): X {
    return n === 0 ? a : this.m.i32.add(a, this.i32(n));
  }
  /** a·n, folding n = 0 and 1. */
  mulc(a: X, n: number): X {
    return n === 0 ? this.i32(0) : n === 1 ? a : this.m.i32.mul(a, this.i32(n));
  }
  block(stmts: readonly X[]): X {
    if (stmts.length === 1) return stmts[0]!;
    return this.m.block(null, [...stmts], this.b.none);
  }
  nop(): X {
    return this.m.nop();
  }
  if(cond: X, then: readonly X[], otherwise?: readonly X[]): X {
    return this.m.if(cond, this.block(then), otherwise ? this.block(otherwise) : undefined);
  }

  // --- loops ---------------------------------------------------------------------------------
  /**
   * for (i = from; i < to; i += step) body. `to` is evaluated every iteration, so pass a constant
   * or a local. The test sits at the bottom (one branch per iteration) behind an entry check.
   */
  for(i: Local, from: X, to: X, step: number, body: readonly X[]): X {
    const m = this.m;
    const brk = this.label('B');
    const top = this.label('L');
    return m.block(brk, [
      i.set(from),
      m.br(brk, m.i32.ge_s(i.get(), to)),
      m.loop(top, this.block([...body, i.set(this.addc(i.get(), step)), m.br(top, m.i32.lt_s(i.get(), this.copyExpr(to)))])),
    ]);
  }

  /** for (i = from; i < to; i += step) with compile-time bounds; no loop when it runs at most once. */
  forc(i: Local, from: number, to: number, step: number, body: readonly X[]): X {
    if (to <= from) return this.nop();
    if (to - from <= step) return this.block([i.set(this.i32(from)), ...body]);
    const m = this.m;
    const top = this.label('L');
    return this.block([i.set(this.i32(from)), m.loop(top, this.block([...body, i.set(this.addc(i.get(), step)), m.br(top, m.i32.lt_s(i.get(), this.i32(to)))]))]);
  }

  /** An expression may appear once in a tree: copy it to use it twice. */
  copyExpr(x: X): X {
    return this.m.copyExpression(x);
  }

  // --- memory --------------------------------------------------------------------------------
  loadf(ptr: X, off = 0): X {
    return this.m.f32.load(off, 4, ptr);
  }
  storef(ptr: X, v: X, off = 0): X {
    return this.m.f32.store(off, 4, ptr, v);
  }
  vload(ptr: X, off = 0): X {
    return this.m.v128.load(off, 16, ptr);
  }
  vstore(ptr: X, v: X, off = 0): X {
    return this.m.v128.store(off, 16, ptr, v);
  }
  /** A vector of the f32 at ptr+off in every lane. */
  vsplatLoad(ptr: X, off = 0): X {
    return this.m.v128.load32_splat(off, 4, ptr);
  }
  /** The first n (1..4) floats at ptr+off, the other lanes zero: reads nothing past the n-th. */
  vloadN(ptr: X, n: number, off = 0): X {
    const m = this.m;
    if (n >= 4) return this.vload(ptr, off);
    if (n === 1) return m.v128.load32_zero(off, 4, ptr);
    if (n === 2) return m.v128.load64_zero(off, 8, ptr);
    return m.v128.load32_lane(off + 8, 4, 2, this.copyExpr(ptr), m.v128.load64_zero(off, 8, ptr));
  }
  /** Stores the first n (1..4) lanes of v at ptr+off; v must be a local get or cheap to copy. */
  vstoreN(ptr: X, v: X, n: number, off = 0): X {
    const m = this.m;
    if (n >= 4) return this.vstore(ptr, v, off);
    if (n === 1) return m.v128.store32_lane(off, 4, 0, ptr, v);
    if (n === 2) return m.v128.store64_lane(off, 8, 0, ptr, v);
    return this.block([m.v128.store64_lane(off, 8, 0, ptr, v), m.v128.store32_lane(off + 8, 4, 2, this.copyExpr(ptr), this.copyExpr(v))]);
  }

  // --- f32x4 ---------------------------------------------------------------------------------
  splat(f32: X): X {
    return this.m.f32x4.splat(f32);
  }
  vconst(n: number): X {
    return this.m.v128.const(new Uint8Array(new Float32Array([n, n, n, n]).buffer));
  }
  vzero(): X {
    return this.m.v128.const(new Uint8Array(16));
  }
  vadd(a: X, b: X): X {
    return this.m.f32x4.add(a, b);
  }
  vsub(a: X, b: X): X {
    return this.m.f32x4.sub(a, b);
  }
  vmul(a: X, b: X): X {
    return this.m.f32x4.mul(a, b);
  }
  vdiv(a: X, b: X): X {
    return this.m.f32x4.div(a, b);
  }
  vmax(a: X, b: X): X {
    return this.m.f32x4.max(a, b);
  }
  /** a·b + c: one fused instruction with relaxed SIMD (its rounding may differ by an ulp). */
  madd(a: X, b: X, c: X): X {
    // binaryen.js has no wrapper for the relaxed ternaries: call the C API directly.
    if (this.opts.relaxed) return (this.b as unknown as RawApi)._BinaryenSIMDTernary(this.m.ptr, this.b.RelaxedMaddVecF32x4, a, b, c);
    return this.m.f32x4.add(this.m.f32x4.mul(a, b), c);
  }
  /** Sum of the four lanes as an f32, pairwise ((l0 + l2) + (l1 + l3)); `tmp` is clobbered. */
  hsum(v: X, tmp: Local): X {
    const m = this.m;
    // Fold the high half onto the low half, then add lanes 0 and 1.
    const half = m.f32x4.add(tmp.tee(v), m.i8x16.shuffle(tmp.get(), tmp.get(), [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]));
    return m.f32.add(m.f32x4.extract_lane(tmp.tee(half), 0), m.f32x4.extract_lane(tmp.get(), 1));
  }
  /** The largest of the four lanes as an f32; `tmp` is clobbered. */
  hmax(v: X, tmp: Local): X {
    const m = this.m;
    const half = m.f32x4.max(tmp.tee(v), m.i8x16.shuffle(tmp.get(), tmp.get(), [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]));
    return m.f32.max(m.f32x4.extract_lane(tmp.tee(half), 0), m.f32x4.extract_lane(tmp.get(), 1));
  }
}

interface RawApi {
  _BinaryenSIMDTernary(module: number, op: number, a: X, b: X, c: X): X;
}

/** Byte indices for i8x16.shuffle picking f32 lanes (0-3 of the first vector, 4-7 of the second). */
const lanes = (...idx: number[]) => idx.flatMap((i) => [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]);
/** Lanes 0, 2, 4, 6 of the 8 floats in (a, b): the even columns. */
export const EVEN = lanes(0, 2, 4, 6);
/** Lanes 1, 3, 5, 7: the odd columns. */
export const ODD = lanes(1, 3, 5, 7);
/** Interleaves a and b: a0 b0 a1 b1 (ZIP_LO) and a2 b2 a3 b3 (ZIP_HI). */
export const ZIP_LO = lanes(0, 4, 1, 5);
export const ZIP_HI = lanes(2, 6, 3, 7);
/** Lanes (0, 1) of a then (0, 1) of b (LOW_PAIRS), and lanes (2, 3) of each: after ZIP_LO and ZIP_HI, the last step of a 4×4 transpose. */
export const LOW_PAIRS = lanes(0, 1, 4, 5);
export const HIGH_PAIRS = lanes(2, 3, 6, 7);

/** ceil(n / k)·k */
export function roundUp(n: number, k: number): number {
  return Math.ceil(n / k) * k;
}
