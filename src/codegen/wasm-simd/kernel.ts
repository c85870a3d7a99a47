import type { KernelLike } from '../../ir/kernel-kind.ts';
import type { Kernel } from '../../ir/program.ts';
import type { Shape } from '../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from './emitter.ts';

/**
 * What a kernel generator sees: its kernel, the absolute address of every slice, and a way to add
 * phases. A phase is one wasm function `(param $tid i32)` run by every thread; the step runs a
 * barrier after each phase, so a kernel that needs all threads' partial results first (a split
 * reduction) uses two phases.
 */
export interface KernelCtx {
  readonly e: Emitter;
  readonly k: Kernel;
  /** Threads the module runs on. */
  readonly T: number;
  /** Absolute address of input i / output i. */
  inAddr(i: number): number;
  outAddr(i: number): number;
  inShape(i: number): Shape;
  outShape(i: number): Shape;
  /** Adds a phase; `body` gets the function's locals and its thread id. */
  phase(body: (fn: Fn, tid: Local) => X[]): void;
  /** Reserves `bytes` of scratch per thread for this kernel; returns an expression: this thread's base. */
  threadScratch(bytes: number, tid: Local): X;
  /** Reserves `bytes` of scratch shared by all threads for this kernel; returns its address. */
  sharedScratch(bytes: number): number;
  /** A work counter (an i32 on its own cache line, zero when the step starts); returns its address. */
  counter(): X;
}

/** Emits one kernel kind. */
export type KernelGen = (c: KernelCtx) => void;

/** A tensor a sub-kernel reads or writes: its absolute address and shape. */
export interface At {
  readonly addr: number;
  readonly shape: Shape;
}

/**
 * A context for running another kind's generator inside a fused kernel, on given addresses
 * (intermediates in scratch). Its phases and scratch come out of the parent's.
 */
export function derive(c: KernelCtx, kind: string, attrs: Kernel['attrs'], ins: readonly At[], outs: readonly At[], expr?: Kernel['expr']): KernelCtx {
  const slice = (t: At) => ({ offset: -1, bytes: 4 * Math.max(1, t.shape.reduce((a, d) => a * d, 1)), shape: t.shape });
  const k: Kernel = { name: `${c.k.name}.${kind}`, kind, ops: [kind], attrs, inputs: ins.map(slice), outputs: outs.map(slice), ...(expr ? { expr } : {}) };
  return {
    e: c.e,
    k,
    T: c.T,
    inAddr: (i) => ins[i]!.addr,
    outAddr: (i) => outs[i]!.addr,
    inShape: (i) => ins[i]!.shape,
    outShape: (i) => outs[i]!.shape,
    phase: (body) => c.phase(body),
    threadScratch: (bytes, tid) => c.threadScratch(bytes, tid),
    sharedScratch: (bytes) => c.sharedScratch(bytes),
    counter: () => c.counter(),
  };
}

/** The kernel over its Ats, for its kind's typed view (src/ir/kernels.ts). */
export function ats(c: KernelCtx): KernelLike<At, At> {
  return { kind: c.k.kind, attrs: c.k.attrs, expr: c.k.expr, inputs: c.k.inputs.map((_, i) => input(c, i)), outputs: c.k.outputs.map((_, i) => output(c, i)) };
}

/** Input i of the kernel as an At. */
export function input(c: KernelCtx, i: number): At {
  return { addr: c.inAddr(i), shape: c.inShape(i) };
}

/** Output i of the kernel as an At. */
export function output(c: KernelCtx, i: number): At {
  return { addr: c.outAddr(i), shape: c.outShape(i) };
}

/**
 * Elements below which a kernel runs on thread 0 alone: splitting it would cost more in the
 * barrier's cache-line traffic (~1 µs) than it saves.
 */
export const PARALLEL_MIN = 16384;

/** The [lo, hi) share of `n` items for thread `tid`, boundaries at multiples of `align` (hi = n for the last thread). */
export function span(e: Emitter, fn: Fn, tid: Local, n: number, align = 1): { lo: Local; hi: Local; init: X[] } {
  const lo = fn.i32();
  const hi = fn.i32();
  const T = e.T;
  if (T === 1) return { lo, hi, init: [lo.set(e.i32(0)), hi.set(e.i32(n))] };
  const blocks = Math.ceil(n / align);
  const m = e.m;
  // lo = (blocks·tid / T)·align, hi = min(n, (blocks·(tid+1) / T)·align)
  const at = (t: X) => e.mulc(m.i32.div_u(e.mulc(t, blocks), e.i32(T)), align);
  const hiRaw = at(e.addc(tid.get(), 1));
  return {
    lo,
    hi,
    init: [lo.set(at(tid.get())), hi.set(align === 1 ? hiRaw : m.select(m.i32.lt_u(hiRaw, e.i32(n)), e.copyExpr(hiRaw), e.i32(n)))],
  };
}

/**
 * for (i = 0; i < n; i++) body(i), the iterations shared out between threads as they come: each
 * thread takes the next i from a counter (atomic add) until none is left. On a shared machine a
 * thread may lose its core for a while; a static split would leave the whole step waiting for
 * its share, here the other threads take it over. One atomic per iteration: iterations should be
 * worth microseconds (an image of a convolution, a channel of its gradient, a block of a gemm).
 * With one thread it is a plain loop.
 */
export function sharedLoop(c: KernelCtx, fn: Fn, i: Local, n: number, body: X[]): X[] {
  const e = c.e;
  const m = e.m;
  if (e.T === 1) return [e.forc(i, 0, n, 1, body)];
  const ctr = c.counter();
  const top = e.label('take');
  const done = e.label('taken');
  return [
    m.block(done, [
      m.loop(top, e.block([i.set(m.i32.atomic.rmw.add(0, ctr, e.i32(1))), m.br(done, m.i32.ge_u(i.get(), e.i32(n))), ...body, m.br(top)])),
    ]),
  ];
}

/** Runs `stmts` on thread 0 only. */
export function onThread0(e: Emitter, tid: Local, stmts: X[]): X[] {
  if (e.T === 1) return stmts;
  return [e.if(e.m.i32.eqz(tid.get()), stmts)];
}

/**
 * The loop over a batch's N images in runs of `per` consecutive ones (n, a local, is the first;
 * the last run takes N mod per where that is not 0): `body(count)` for each run, shared out as
 * sharedLoop when `shared`, else a plain loop.
 */
export function imageRuns(c: KernelCtx, fn: Fn, n: Local, N: number, per: number, shared: boolean, body: (count: number) => X[]): X[] {
  const e = c.e;
  const r = fn.i32();
  const runs = Math.ceil(N / per);
  const tail = N % per;
  const run = [n.set(e.mulc(r.get(), per)), ...(tail === 0 ? body(per) : [e.if(e.m.i32.lt_u(r.get(), e.i32(runs - 1)), body(per), body(tail))])];
  return shared ? sharedLoop(c, fn, r, runs, run) : [e.forc(r, 0, runs, 1, run)];
}
