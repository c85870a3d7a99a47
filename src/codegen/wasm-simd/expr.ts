import type { Attrs } from '../../ir/graph.ts';
import { num } from '../../ir/op.ts';
import type { Expr, ExprArg } from '../../ir/program.ts';
import type { Shape } from '../../ir/shape.ts';
import { Stream } from '../../runtime/rng.ts';
import { CTRL } from './abi.ts';
import type { Emitter, Fn, Local, X } from './emitter.ts';
import type { At, KernelCtx } from './kernel.ts';
import { mapBody, type Lanes, type Operand } from './map.ts';

/**
 * Elementwise expressions (Kernel.expr, src/ir/kernels.ts) compiled into one vectorised map:
 * every step's value stays in a register, only the outputs are stored. The plain elementwise
 * kinds are one-step expressions of their own op. Operands are read by the step op's rule:
 * NumPy broadcasting, per-channel [C] operands of the batch-norm ops at axis 1, scalars
 * everywhere; dropout and adam_step take their step counter once, before the loop.
 */

const PER_CHANNEL = new Set(['batch_norm', 'batch_norm_grad', 'batch_var_grad']);
/** Operand position of the step counter, read once as a scalar. */
const STEP_ARG: Readonly<Record<string, number>> = { dropout: 1, adam_step: 3 };

/** Sources of an expression's operands: kernel inputs (or acc) in memory, by address. */
export interface ExprSources {
  inputs: readonly At[];
  acc?: At;
}

interface Scalars {
  dropoutKey?: Local;
  adam?: { stepSize: Local; bc2: Local };
}

/** The expression of a plain elementwise kind: its own op on its inputs, in order. */
export function opExpr(op: string, attrs: Attrs, inputs: number): Expr {
  return { steps: [{ op, attrs, args: Array.from({ length: inputs }, (_, i) => ({ input: i })) }], outputs: [0] };
}

/** Channel view [1, C, 1, 1] / [1, C] of a domain. */
function channelView(domain: Shape): number[] {
  return domain.map((d, i) => (i === 1 ? d : 1));
}

/** Emits `outs[i] = expr output i` over `domain`, as one phase. */
export function emitExpr(c: KernelCtx, domain: Shape, expr: Expr, src: ExprSources, outs: readonly At[]): void {
  c.phase((fn, tid) => exprBody(c, fn, tid, domain, expr, src, outs));
}

/** The statements of an expression map (see mapBody for `thread`). */
export function exprBody(c: KernelCtx, fn: Fn, tid: Local, domain: Shape, expr: Expr, src: ExprSources, outs: readonly At[], thread = 0): X[] {
  const { e } = c;
  const m = e.m;
  const ins: Operand[] = [];
  const operandOf = (addr: number, shape: Shape): number => {
    const key = `${addr}:${shape.join(',')}`;
    let i = ins.findIndex((o) => `${o.addr}:${o.shape.join(',')}` === key);
    if (i < 0) i = ins.push({ addr, shape }) - 1;
    return i;
  };
  // Where each argument comes from: a map operand index, a step, a literal, or a scalar.
  type Arg = { operand: number } | { step: number } | { value: number } | { scalar: X };
  const scalarOf = (a: ExprArg): X => {
    if ('value' in a) return e.f32(a.value);
    if ('input' in a) return e.loadf(e.i32(src.inputs[a.input]!.addr));
    throw new Error(`wasm expr: a step counter must be an input or a literal, got ${JSON.stringify(a)}`);
  };
  const args: Arg[][] = expr.steps.map((s) =>
    s.args.map((a, pos): Arg => {
      if (STEP_ARG[s.op] === pos) return { scalar: scalarOf(a) };
      if ('step' in a) return { step: a.step };
      if ('value' in a) return { value: a.value };
      if ('acc' in a) {
        if (!src.acc) throw new Error('wasm expr: acc used by a kind without one');
        return { operand: operandOf(src.acc.addr, domain) };
      }
      const t = src.inputs[a.input]!;
      const view = PER_CHANNEL.has(s.op) && t.shape.length === 1 && domain.length >= 2 ? channelView(domain) : t.shape;
      return { operand: operandOf(t.addr, view) };
    }),
  );
  const accOperand = expr.outputs.includes(-1) ? operandOf(src.acc!.addr, domain) : -1;
  const scalars: Scalars[] = expr.steps.map(() => ({}));

  return mapBody(c, fn, tid, {
    outs,
    ins,
    prologue: (fn) => {
      const pro: X[] = [];
      expr.steps.forEach((s, j) => {
        const stepArg = args[j]![STEP_ARG[s.op] ?? -1];
        if (!stepArg || !('scalar' in stepArg)) return;
        if (s.op === 'dropout') {
          const key = fn.i32();
          scalars[j]!.dropoutKey = key;
          pro.push(key.set(dropoutKey(e, fn, num(s.attrs, 'stream'), m.i32.trunc_u_sat.f32(stepArg.scalar))));
        } else {
          const stepSize = fn.v128();
          const bc2 = fn.v128();
          scalars[j]!.adam = { stepSize, bc2 };
          pro.push(...adamScalars(e, fn, s.attrs, stepArg.scalar, stepSize, bc2));
        }
      });
      return pro;
    },
    f: (v, fn, at) => {
      const vals: X[] = [];
      const stepLocals = expr.steps.map(() => fn.v128());
      // Operands into locals first: an operand may feed several steps.
      const opLocals = v.map(() => fn.v128());
      const body: X[] = v.map((x, k) => opLocals[k]!.set(x));
      expr.steps.forEach((s, j) => {
        const a = args[j]!.map((arg) => ('operand' in arg ? opLocals[arg.operand]!.get() : 'step' in arg ? stepLocals[arg.step]!.get() : 'value' in arg ? e.vconst(arg.value) : e.nop()));
        body.push(stepLocals[j]!.set(stepOp(e, fn, s.op, s.attrs, a, domain, scalars[j]!, at)));
      });
      // Steps are statements evaluated in order; outputs read their locals.
      for (const o of expr.outputs) vals.push(o === -1 ? opLocals[accOperand]!.get() : stepLocals[o]!.get());
      // Prepend the step statements to the first output's expression.
      const first = vals[0]!;
      vals[0] = m.block(null, [...body, first], e.b.v128);
      return vals;
    },
  }, thread);
}

/** One step on f32x4 values. */
function stepOp(e: Emitter, fn: Fn, op: string, attrs: Attrs, a: X[], domain: Shape, sc: Scalars, at: Lanes): X {
  const m = e.m;
  const r = (variance: X) => e.vdiv(e.vconst(1), m.f32x4.sqrt(e.vadd(variance, e.vconst(num(attrs, 'eps')))));
  switch (op) {
    case 'add':
      return e.vadd(a[0]!, a[1]!);
    case 'sub':
      return e.vsub(a[0]!, a[1]!);
    case 'mul':
      return e.vmul(a[0]!, a[1]!);
    case 'div':
      return e.vdiv(a[0]!, a[1]!);
    case 'neg':
      return m.f32x4.neg(a[0]!);
    case 'sqrt':
      return m.f32x4.sqrt(a[0]!);
    case 'relu':
      // pmax(x, 0) = (x < 0 ? 0 : x): one maxps, and NaN passes through as with torch.relu.
      return m.f32x4.pmax(a[0]!, e.vzero());
    case 'relu_grad':
      return m.v128.and(a[0]!, m.f32x4.gt(a[1]!, e.vzero()));
    case 'axpby':
      return e.vadd(e.vmul(e.vconst(num(attrs, 'alpha')), a[0]!), e.vmul(e.vconst(num(attrs, 'beta')), a[1]!));
    case 'expand':
      return a[0]!;
    case 'dropout': {
      const p = num(attrs, 'p');
      const keep = dropoutMask(e, fn, sc.dropoutKey!, at.index(), Math.ceil(p * 2 ** 24));
      return m.v128.and(e.vmul(a[0]!, e.vconst(Math.fround(1 / (1 - p)))), keep);
    }
    case 'adam_step': {
      const { stepSize, bc2 } = sc.adam!;
      return e.vsub(a[0]!, e.vmul(stepSize.get(), e.vdiv(a[1]!, e.vadd(e.vdiv(m.f32x4.sqrt(a[2]!), bc2.get()), e.vconst(num(attrs, 'eps'))))));
    }
    case 'batch_norm':
      return e.vadd(e.vmul(e.vmul(e.vsub(a[0]!, a[1]!), r(a[2]!)), a[3]!), a[4]!);
    case 'batch_norm_grad':
      if (attrs.wrt !== 'x') throw new Error(`wasm expr: batch_norm_grad wrt ${String(attrs.wrt)} is a reduction, not elementwise`);
      return e.vmul(e.vmul(a[0]!, a[4]!), r(a[3]!));
    case 'batch_var_grad': {
      const count = domain.reduce((x, d) => x * d, 1) / domain[1]!;
      return e.vdiv(e.vmul(e.vmul(a[0]!, e.vconst(2)), e.vsub(a[1]!, a[2]!)), e.vconst(count));
    }
    default:
      throw new Error(`wasm expr: '${op}' is not an elementwise op`);
  }
}

/** MurmurHash3's fmix32 on a scalar i32, or on 4 lanes of i32. */
function fmix32(e: Emitter, h: X, vec: boolean, tmp: Local): X {
  const m = e.m;
  const step = (x: X, sh: number, mul?: number) => {
    const y = vec ? m.v128.xor(tmp.tee(x), m.i32x4.shr_u(tmp.get(), e.i32(sh))) : m.i32.xor(tmp.tee(x), m.i32.shr_u(tmp.get(), e.i32(sh)));
    if (mul === undefined) return y;
    return vec ? m.i32x4.mul(y, m.i32x4.splat(e.i32(mul))) : m.i32.mul(y, e.i32(mul));
  };
  return step(step(step(h, 16, 0x85ebca6b), 13, 0xc2b2ae35), 16);
}

/** streamKey(seed, DROPOUT + stream, step) of src/runtime/rng.ts; the seed is CTRL.SEED. */
function dropoutKey(e: Emitter, fn: Fn, stream: number, step: X): X {
  const m = e.m;
  const t = fn.i32();
  const seed = m.i32.load(0, 4, e.i32(CTRL.SEED));
  let h = fmix32(e, m.i32.xor(seed, e.i32(0x9e3779b9)), false, t);
  h = fmix32(e, m.i32.xor(h, e.i32(Math.imul(Stream.DROPOUT + stream + 1, 0x27d4eb2f))), false, t);
  return fmix32(e, m.i32.xor(h, m.i32.mul(e.addc(step, 1), e.i32(0x165667b1))), false, t);
}

/**
 * Keep-mask of 4 elements: uniform(key, i) >= p, with uniform = (bits >>> 8)·2^-24, is the
 * integer test (bits >>> 8) >= ceil(p·2^24); bits = fmix32(key ^ fmix32(i + 0x6a09e667)) with
 * i32x4 multiplies (the low 32 bits, as Math.imul).
 */
function dropoutMask(e: Emitter, fn: Fn, key: Local, index: X, threshold: number): X {
  const m = e.m;
  const tv = fn.v128();
  const idx = m.i32x4.add(index, m.i32x4.splat(e.i32(0x6a09e667)));
  const bits = fmix32(e, m.v128.xor(m.i32x4.splat(key.get()), fmix32(e, idx, true, tv)), true, tv);
  return m.i32x4.ge_s(m.i32x4.shr_u(bits, e.i32(8)), m.i32x4.splat(e.i32(threshold)));
}

/**
 * Adam's per-step scalars in f64 (torch.optim.Adam, 1.13): t = step + 1,
 * stepSize = lr/(1 - β1^t), bc2 = sqrt(1 - β2^t), β^t by repeated squaring; splatted to f32x4.
 */
function adamScalars(e: Emitter, fn: Fn, attrs: Attrs, step: X, stepSize: Local, bc2: Local): X[] {
  const m = e.m;
  const t = fn.i32();
  const p1 = fn.f64();
  const p2 = fn.f64();
  return [
    t.set(e.addc(m.i32.trunc_s_sat.f32(step), 1)),
    ...powi(e, fn, num(attrs, 'beta1'), t, p1),
    ...powi(e, fn, num(attrs, 'beta2'), t, p2),
    stepSize.set(e.splat(m.f32.demote(m.f64.div(e.f64(num(attrs, 'lr')), m.f64.sub(e.f64(1), p1.get()))))),
    bc2.set(e.splat(m.f32.demote(m.f64.sqrt(m.f64.sub(e.f64(1), p2.get()))))),
  ];
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

/** A plain elementwise kind (add, relu, adam_step, ...): the one-step expression of its op. */
export function opKernel(c: KernelCtx): void {
  const k = c.k;
  emitExpr(c, c.outShape(0), opExpr(k.kind, k.attrs, k.inputs.length), { inputs: k.inputs.map((_, i) => ({ addr: c.inAddr(i), shape: c.inShape(i) })) }, [{ addr: c.outAddr(0), shape: c.outShape(0) }]);
}
