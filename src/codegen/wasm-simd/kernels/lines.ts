import { num } from '../../../ir/op.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import { PARALLEL_MIN, span, onThread0, type KernelCtx } from '../kernel.ts';
import { vexp, vlog, type VUnary } from '../math.ts';

// Shared by softmax, log_softmax, cross-entropy and their gradients: a line is the elements along
// `dim`, base + k·inner for k < n. Sums and differences run in f64; exp and log are the module's
// own f32 functions (math.ts, 1 ulp), one lane of them per element: a few values per example,
// so lanes left idle cost little, and no call leaves the module.

export interface Line {
  /** Byte offset of the line's first element from each tensor's start. */
  base: Local;
  n: number;
  /** Byte stride between its elements. */
  stride: number;
}

/** Runs body(line) for this thread's share of the lines of `shape` along `dim`. */
export function eachLine(c: KernelCtx, fn: Fn, tid: Local, shape: Shape, dim: number, body: (l: Line) => X[]): X[] {
  const { e } = c;
  const m = e.m;
  let outer = 1;
  for (let d = 0; d < dim; d++) outer *= shape[d]!;
  let inner = 1;
  for (let d = dim + 1; d < shape.length; d++) inner *= shape[d]!;
  const n = shape[dim]!;
  const lines = outer * inner;
  const li = fn.i32();
  const base = fn.i32();
  // line li = o·inner + j starts at o·n·inner + j
  const perLine = [
    base.set(e.mulc(inner === 1 ? e.mulc(li.get(), n) : e.add(e.mulc(m.i32.div_u(li.get(), e.i32(inner)), n * inner), m.i32.rem_u(li.get(), e.i32(inner))), 4)),
    ...body({ base, n, stride: 4 * inner }),
  ];
  if (e.T > 1 && lines >= e.T && lines * n >= PARALLEL_MIN / 4) {
    const s = span(e, fn, tid, lines);
    return [...s.init, e.for(li, s.lo.get(), s.hi.get(), 1, perLine)];
  }
  return onThread0(e, tid, [e.forc(li, 0, lines, 1, perLine)]);
}

export function dimOf(c: KernelCtx): number {
  return num(c.k.attrs, 'dim');
}

/** Element k of a line of the tensor at `addr`, promoted to f64. */
export function at(e: Emitter, addr: number, l: Line, k: Local): X {
  return e.m.f64.promote(e.loadf(elem(e, addr, l, k)));
}

export function elem(e: Emitter, addr: number, l: Line, k: Local): X {
  return e.add(e.add(e.i32(addr), l.base.get()), e.mulc(k.get(), l.stride));
}

/** f(x) for an f64 x, through lane 0 of the f32x4 function f. */
function viaLane(f: VUnary, e: Emitter, fn: Fn, x: X): X {
  const m = e.m;
  return m.f64.promote(m.f32x4.extract_lane(f(e, fn, m.f32x4.splat(m.f32.demote(x))), 0));
}

export const exp = (e: Emitter, fn: Fn, x: X): X => viaLane(vexp, e, fn, x);
export const log = (e: Emitter, fn: Fn, x: X): X => viaLane(vlog, e, fn, x);

/** max and Σ exp(x - max) of a line, in f64 (the max is subtracted so no exp overflows). */
export function maxAndSumExp(e: Emitter, fn: Fn, addr: number, l: Line, max: Local, sum: Local): X[] {
  const m = e.m;
  const k = fn.i32();
  return [
    max.set(e.f64(-Infinity)),
    e.forc(k, 0, l.n, 1, [max.set(m.f64.max(max.get(), at(e, addr, l, k)))]),
    sum.set(e.f64(0)),
    e.forc(k, 0, l.n, 1, [sum.set(m.f64.add(sum.get(), exp(e, fn, m.f64.sub(at(e, addr, l, k), max.get()))))]),
  ];
}
