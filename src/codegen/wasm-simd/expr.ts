import { elementwiseOf, opExpr } from '../../ir/elementwise.ts';
import type { Attrs } from '../../ir/graph.ts';
import { argsOf, f64Steps, isBoolean, type Expr, type Prim, type StepOf } from '../../ir/expr.ts';
import { streamKey, randomBits, type U32Ops } from '../../ir/rng.ts';
import { numel, type Shape } from '../../ir/shape.ts';
import { CTRL } from './abi.ts';
import type { Emitter, Fn, Local, X } from './emitter.ts';
import type { At, KernelCtx } from './kernel.ts';
import { mapBody, type Lanes, type MapSpec, type Operand } from './map.ts';
import { vexp, verf, vlog, vtanh } from './math.ts';

/**
 * Elementwise expressions (src/ir/expr.ts) compiled into one vectorised map: every step's value
 * stays in a register, only the outputs are stored. Each primitive is one entry of PRIMS below,
 * on f32x4 lanes; uniform f64 steps (Adam's bias corrections) and the RNG's stream key are
 * computed once per thread before the loop.
 */

/** Sources of an expression's operands: kernel inputs (and acc) in memory, by address. */
export interface ExprSources {
  inputs: readonly At[];
  acc?: At;
}

/** What a primitive's code may use besides its operands' f32x4 values. */
interface Cx {
  readonly e: Emitter;
  readonly fn: Fn;
  readonly at: Lanes;
  /** The shape the expression is evaluated over. */
  readonly domain: Shape;
  /** The map operand of an input or acc step, loaded for these lanes. */
  operand(step: number): X;
  /** The rng key of an rng step (an i32 local set before the loop). */
  key(step: number): Local;
  /** The expression's steps, for peepholes that look at an operand's definition. */
  readonly expr: Expr;
}

type Vector<P extends Prim> = (s: StepOf<P>, a: readonly X[], cx: Cx, j: number) => X;
const un = (f: (e: Emitter, a: X, fn: Fn) => X) => (_: unknown, [a]: readonly X[], cx: Cx) => f(cx.e, a!, cx.fn);
const bin = (f: (e: Emitter, a: X, b: X) => X) => (_: unknown, [a, b]: readonly X[], cx: Cx) => f(cx.e, a!, b!);
const isZero = (cx: Cx, k: number) => {
  const s = cx.expr.steps[k]!;
  return s.prim === 'const' && s.value === 0 && !Object.is(s.value, -0);
};

/** Every primitive on four lanes; comparisons give all-ones/all-zeros lane masks. */
const PRIMS: { readonly [P in Prim]: Vector<P> } = {
  input: (_, __, cx, j) => cx.operand(j),
  acc: (_, __, cx, j) => cx.operand(j),
  const: (s, _, cx) => cx.e.vconst(s.value),
  // Lane by lane: SIMD has no integer division. Index constants (masks, positions) are cheap
  // beside the loads they save.
  index: (s, _, cx) => {
    const { e, domain } = cx;
    const m = e.m;
    const d = domain.length + s.dim;
    if (d < 0) return e.vzero();
    const inner = numel(domain.slice(d + 1));
    const flat = cx.fn.v128();
    let r = e.vzero();
    for (let lane = 0; lane < 4; lane++) {
      let c = m.i32x4.extract_lane(flat.get(), lane);
      if (inner > 1) c = m.i32.div_u(c, e.i32(inner));
      if (d > 0) c = m.i32.rem_u(c, e.i32(domain[d]!));
      r = m.f32x4.replace_lane(r, lane, m.f32.convert_u.i32(c));
    }
    return m.block(null, [flat.set(cx.at.index()), r], e.b.v128);
  },
  add: bin((e, a, b) => e.vadd(a, b)),
  sub: bin((e, a, b) => e.vsub(a, b)),
  mul: bin((e, a, b) => e.vmul(a, b)),
  div: bin((e, a, b) => e.vdiv(a, b)),
  max: bin((e, a, b) => e.m.f32x4.max(a, b)),
  min: bin((e, a, b) => e.m.f32x4.min(a, b)),
  neg: un((e, a) => e.m.f32x4.neg(a)),
  abs: un((e, a) => e.m.f32x4.abs(a)),
  sqrt: un((e, a) => e.m.f32x4.sqrt(a)),
  exp: un((e, a, fn) => vexp(e, fn, a)),
  log: un((e, a, fn) => vlog(e, fn, a)),
  tanh: un((e, a, fn) => vtanh(e, fn, a)),
  erf: un((e, a, fn) => verf(e, fn, a)),
  lt: bin((e, a, b) => e.m.f32x4.lt(a, b)),
  le: bin((e, a, b) => e.m.f32x4.le(a, b)),
  gt: bin((e, a, b) => e.m.f32x4.gt(a, b)),
  ge: bin((e, a, b) => e.m.f32x4.ge(a, b)),
  eq: bin((e, a, b) => e.m.f32x4.eq(a, b)),
  select: (s, [c, a, b], cx) => {
    const m = cx.e.m;
    const [ci, ai, bi] = s.args;
    // x < y ? y : x is pmax(x, y): one maxps (ReLU as select(x < 0, 0, x)).
    const cs = cx.expr.steps[ci]!;
    if (cs.prim === 'lt' && cs.args[0] === bi && cs.args[1] === ai) return m.f32x4.pmax(b!, a!);
    // A mask against +0 is a bitwise and: +0 is all zero bits.
    if (isZero(cx, bi)) return m.v128.and(a!, c!);
    if (isZero(cx, ai)) return m.v128.andnot(b!, c!);
    return m.v128.bitselect(a!, b!, c!);
  },
  rng: (_, __, cx, j) => rngBits24(cx.e, cx.fn, cx.key(j), cx.at.index()),
  pow1m: () => {
    throw new Error('wasm expr: pow1m is uniform and computed before the loop');
  },
};

/** Uniform f64 steps, computed once: arithmetic on f64 scalars. */
const F64: Partial<{ readonly [P in Prim]: (s: StepOf<P>, a: readonly X[], e: Emitter, fn: Fn, scalar: (k: number) => X) => X }> = {
  const: (s, _, e) => e.f64(s.value),
  add: (_, [a, b], e) => e.m.f64.add(a!, b!),
  sub: (_, [a, b], e) => e.m.f64.sub(a!, b!),
  mul: (_, [a, b], e) => e.m.f64.mul(a!, b!),
  div: (_, [a, b], e) => e.m.f64.div(a!, b!),
  max: (_, [a, b], e) => e.m.f64.max(a!, b!),
  min: (_, [a, b], e) => e.m.f64.min(a!, b!),
  neg: (_, [a], e) => e.m.f64.neg(a!),
  abs: (_, [a], e) => e.m.f64.abs(a!),
  sqrt: (_, [a], e) => e.m.f64.sqrt(a!),
  pow1m: (s, _, e, fn, scalar) => {
    const t = fn.i32();
    const p = fn.f64();
    return e.m.block(null, [t.set(e.addc(e.m.i32.trunc_s_sat.f32(scalar(s.args[0])), 1)), ...powi(e, fn, s.base, t, p), e.m.f64.sub(e.f64(1), p.get())], e.b.f64);
  },
};

type Lazy = () => X;

/**
 * The RNG's u32 algebra on binaryen expressions, as thunks (a binaryen expression may appear in
 * one place only): a shared value is set into a local once, its statement queued in `stmts`.
 */
function u32Ops(e: Emitter, fn: Fn, vec: boolean, stmts: X[]): U32Ops<Lazy> {
  const m = e.m;
  const I = vec ? m.i32x4 : m.i32;
  return {
    lit: (v) => () => (vec ? m.i32x4.splat(e.i32(v | 0)) : e.i32(v | 0)),
    xor: (a, b) => () => (vec ? m.v128.xor(a(), b()) : m.i32.xor(a(), b())),
    mul: (a, b) => () => I.mul(a(), b()),
    add: (a, b) => () => I.add(a(), b()),
    shr: (a, bits) => () => I.shr_u(a(), e.i32(bits)),
    share: (a) => {
      const t = vec ? fn.v128() : fn.i32();
      stmts.push(t.set(a()));
      return () => t.get();
    },
  };
}

/** A hash of the RNG as one expression: its shared values' statements, then the result. */
function hashed(e: Emitter, fn: Fn, vec: boolean, f: (o: U32Ops<Lazy>) => Lazy): X {
  const stmts: X[] = [];
  const r = f(u32Ops(e, fn, vec, stmts));
  return e.m.block(null, [...stmts, r()], vec ? e.b.v128 : e.b.i32);
}

/** The rng's key for `stream` at the step counter `step` (an f32 expression), as an i32: once per kernel. */
export function rngKey(e: Emitter, fn: Fn, stream: number, step: X): X {
  const m = e.m;
  return hashed(e, fn, false, (o) => streamKey(o, () => m.i32.load(0, 4, e.i32(CTRL.SEED)), o.lit(stream), () => m.i32.trunc_u_sat.f32(step)));
}

/** The 24 high bits of the draws at four flat indices (i32x4), as f32x4 integers. */
export function rngBits24(e: Emitter, fn: Fn, key: Local, index: X): X {
  const m = e.m;
  const bits = hashed(e, fn, true, (o) => randomBits(o, () => m.i32x4.splat(key.get()), () => index));
  return m.f32x4.convert_i32x4_s(m.i32x4.shr_u(bits, e.i32(8)));
}

/** Channel view [1, C, 1, 1] / [1, C] of a domain. */
const channelView = (domain: Shape): number[] => domain.map((d, i) => (i === 1 ? d : 1));

/**
 * An anchored kind's epilogue, split around where the kind writes its acc: straight into the
 * epilogue's first output when that output is acc itself (a pre-activation the backward reads),
 * the epilogue then computing only the rest; else into scratch.
 */
export function epilogueAround(c: KernelCtx, domain: Shape, expr: Expr, outs: readonly At[]): { acc: At; emit: (src: Omit<ExprSources, 'acc'>) => void } {
  const direct = expr.steps[expr.outputs[0]!]?.prim === 'acc';
  const acc = direct ? { addr: outs[0]!.addr, shape: domain } : { addr: c.sharedScratch(4 * numel(domain)), shape: domain };
  const rest = direct ? { ...expr, outputs: expr.outputs.slice(1) } : expr;
  const emit = (src: Omit<ExprSources, 'acc'>) => {
    if (rest.outputs.length > 0) emitExpr(c, domain, rest, { ...src, acc }, outs.slice(direct ? 1 : 0));
  };
  return { acc, emit };
}

/** Emits `outs[i] = expr output i` over `domain`, as one phase. */
export function emitExpr(c: KernelCtx, domain: Shape, expr: Expr, src: ExprSources, outs: readonly At[]): void {
  c.phase((fn, tid) => exprBody(c, fn, tid, domain, expr, src, outs));
}

/** The statements of an expression map (see mapBody for `thread`). */
export function exprBody(c: KernelCtx, fn: Fn, tid: Local, domain: Shape, expr: Expr, src: ExprSources, outs: readonly At[], thread = 0, after?: MapSpec['after']): X[] {
  const { e } = c;
  const m = e.m;
  const uniform = f64Steps(expr);
  const ins: Operand[] = [];
  const operandOf = new Map<number, number>();
  const addOperand = (j: number, addr: number, shape: Shape) => {
    let i = ins.findIndex((o) => o.addr === addr && o.shape.join() === shape.join());
    if (i < 0) i = ins.push({ addr, shape }) - 1;
    operandOf.set(j, i);
  };
  expr.steps.forEach((s, j) => {
    if (s.prim === 'acc') {
      if (!src.acc) throw new Error('wasm expr: acc used by a kind without one');
      addOperand(j, src.acc.addr, domain);
    } else if (s.prim === 'input') {
      const t = src.inputs[s.input]!;
      addOperand(j, t.addr, s.channel && numel(t.shape) > 1 && domain.length >= 2 ? channelView(domain) : t.shape);
    }
  });
  /** The f32 scalar a counter primitive reads: a one-element input or a literal. */
  const scalar = (k: number): X => {
    const s = expr.steps[k]!;
    if (s.prim === 'const') return e.f32(s.value);
    if (s.prim === 'input' && numel(src.inputs[s.input]!.shape) === 1) return e.loadf(e.i32(src.inputs[s.input]!.addr));
    throw new Error(`wasm expr: a step counter must be a one-element input or a literal, got ${JSON.stringify(s)}`);
  };
  const vecLocals: Local[] = [];
  const keys: Local[] = [];
  const usedByVector = new Set(expr.steps.flatMap((s, j) => (uniform[j] || !('args' in s) ? [] : s.args.filter((k) => uniform[k]))));

  return mapBody(c, fn, tid, {
    outs,
    ins,
    after,
    prologue: (fn) => {
      const pro: X[] = [];
      const f64Locals: Local[] = [];
      expr.steps.forEach((s, j) => {
        if (uniform[j]) {
          const impl = F64[s.prim] as ((s: unknown, a: readonly X[], e: Emitter, fn: Fn, scalar: (k: number) => X) => X) | undefined;
          if (!impl) throw new Error(`wasm expr: '${s.prim}' has no f64 form`);
          const a = ('args' in s ? s.args : []).map((k) => (uniform[k] ? f64Locals[k]!.get() : e.f64((expr.steps[k] as StepOf<'const'>).value)));
          f64Locals[j] = fn.f64();
          pro.push(f64Locals[j]!.set(impl(s, a, e, fn, scalar)));
          if (usedByVector.has(j)) {
            vecLocals[j] = fn.v128();
            pro.push(vecLocals[j]!.set(e.splat(m.f32.demote(f64Locals[j]!.get()))));
          }
        } else if (s.prim === 'rng') {
          keys[j] = fn.i32();
          pro.push(keys[j]!.set(rngKey(e, fn, s.stream, scalar(s.args[0]))));
        }
      });
      return pro;
    },
    f: (v, fn, at) => {
      const locals = expr.steps.map((_, j) => (uniform[j] ? vecLocals[j] : fn.v128()));
      // Operands into locals first: an operand may feed several steps.
      const opLocals = v.map(() => fn.v128());
      const body: X[] = v.map((x, k) => opLocals[k]!.set(x));
      const cx: Cx = { e, fn, at, domain, expr, operand: (j) => opLocals[operandOf.get(j)!]!.get(), key: (j) => keys[j]! };
      expr.steps.forEach((s, j) => {
        if (uniform[j]) return;
        const a = ('args' in s ? s.args : []).map((k) => locals[k]!.get());
        body.push(locals[j]!.set((PRIMS[s.prim] as Vector<Prim>)(s, a, cx, j)));
      });
      const vals = expr.outputs.map((o) => {
        if (uniform[o] || isBoolean(expr.steps[o]!)) throw new Error('wasm expr: an output must be an f32 value of the domain');
        return locals[o]!.get();
      });
      // Steps are statements evaluated in order; prepend them to the first output's value.
      vals[0] = m.block(null, [...body, vals[0]!], e.b.v128);
      return vals;
    },
  }, thread);
}

/**
 * An expression of one output as a value inside another kernel's loop (batch_norm_grad_stats'
 * g, read by its reduction): its input steps as that loop's operands, and its value at a vector
 * of them, the steps set into locals by `stmts`. Lane arithmetic only: positions, random bits
 * and uniform f64 steps need mapBody's loop.
 */
export function exprInLoop(expr: Expr, inputs: readonly (At & { readonly filled?: true })[], domain: Shape): { ins: Operand[]; at: (e: Emitter, fn: Fn, v: readonly X[]) => { stmts: X[]; value: X } } {
  if (expr.outputs.length !== 1) throw new Error('wasm expr: a value in a loop is one output');
  const uniform = f64Steps(expr);
  const ins: Operand[] = [];
  const operandOf = new Map<number, number>();
  expr.steps.forEach((s, j) => {
    if (s.prim === 'index' || s.prim === 'rng' || s.prim === 'acc' || uniform[j]) throw new Error(`wasm expr: '${s.prim}' cannot be computed inside another kernel's loop`);
    if (s.prim !== 'input') return;
    const t = inputs[s.input]!;
    const shape = s.channel && numel(t.shape) > 1 && domain.length >= 2 ? channelView(domain) : t.shape;
    let i = ins.findIndex((o) => o.addr === t.addr && o.shape.join() === shape.join() && o.filled === t.filled);
    if (i < 0) i = ins.push(t.filled ? { addr: t.addr, shape, filled: true } : { addr: t.addr, shape }) - 1;
    operandOf.set(j, i);
  });
  const at = (e: Emitter, fn: Fn, v: readonly X[]) => {
    const locals = expr.steps.map(() => fn.v128());
    const none = () => {
      throw new Error('wasm expr: no lanes here');
    };
    const cx: Cx = { e, fn, at: { index: none } as unknown as Lanes, domain, expr, operand: (j) => e.copyExpr(v[operandOf.get(j)!]!), key: none };
    const stmts = expr.steps.map((s, j) => locals[j]!.set((PRIMS[s.prim] as Vector<Prim>)(s, argsOf(s).map((k) => locals[k]!.get()), cx, j)));
    return { stmts, value: locals[expr.outputs[0]!]!.get() };
  };
  return { ins, at };
}

/** out = base^n (f64) for an i32 n >= 0, by repeated squaring. */
function powi(e: Emitter, fn: Fn, base: number, n: Local, out: Local): X[] {
  const m = e.m;
  const b = fn.f64();
  const k = fn.i32();
  const top = e.label('pow');
  const done = e.label('powd');
  return [
    out.set(e.f64(1)),
    b.set(e.f64(base)),
    k.set(n.get()),
    m.block(done, [
      m.loop(
        top,
        e.block([
          m.br(done, m.i32.le_s(k.get(), e.i32(0))),
          e.if(m.i32.and(k.get(), e.i32(1)), [out.set(m.f64.mul(out.get(), b.get()))]),
          b.set(m.f64.mul(b.get(), b.get())),
          k.set(m.i32.shr_u(k.get(), e.i32(1))),
          m.br(top),
        ]),
      ),
    ]),
  ];
}

/** Whether a kernel kind is an elementwise op of the table (its kernel is its template). */
export const isElementwiseKind = (kind: string, attrs: Attrs): boolean => elementwiseOf(kind, attrs) !== undefined;

/** A plain elementwise kind (add, relu, adam_step, ...): its op's template on its inputs. */
export function opKernel(c: KernelCtx): void {
  const k = c.k;
  const shapes = k.inputs.map((_, i) => c.inShape(i));
  const expr = opExpr(k.kind, k.attrs, shapes, c.outShape(0));
  emitExpr(c, c.outShape(0), expr, { inputs: k.inputs.map((_, i) => ({ addr: c.inAddr(i), shape: shapes[i]! })) }, [{ addr: c.outAddr(0), shape: c.outShape(0) }]);
}
