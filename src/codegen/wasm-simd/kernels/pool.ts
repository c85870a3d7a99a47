import type { PoolWindow } from '../../../ir/ops/pool.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import { PARALLEL_MIN, span, onThread0, type KernelCtx } from '../kernel.ts';

// Shared by the pooling kernels: the per-plane loop split across threads, and window taps.

/** The 2×2 stride-2 unpadded window of SimpleCNN and LeNet: vectorised. */
export function isPair(p: PoolWindow): boolean {
  return p.kh === 2 && p.kw === 2 && p.sh === 2 && p.sw === 2 && p.ph === 0 && p.pw === 0;
}

/** Runs body(plane) for every (n, c) plane of this thread's share. */
export function perPlane(c: KernelCtx, fn: Fn, tid: Local, planes: number, work: number, body: (plane: Local) => X[]): X[] {
  const { e } = c;
  const pl = fn.i32();
  if (e.T > 1 && planes >= e.T && work >= PARALLEL_MIN) {
    const s = span(e, fn, tid, planes);
    return [...s.init, e.for(pl, s.lo.get(), s.hi.get(), 1, body(pl))];
  }
  return onThread0(e, tid, [e.forc(pl, 0, planes, 1, body(pl))]);
}

/** ih in [0, H) and iw in [0, W) (negative values compare as huge unsigned). */
export function inBounds(e: Emitter, ih: X, iw: X, H: number, W: number): X {
  const m = e.m;
  return m.i32.and(m.i32.lt_u(ih, e.i32(H)), m.i32.lt_u(iw, e.i32(W)));
}

/**
 * One statement per tap of window (oh, ow) in the plane starting at byte address `plane`:
 * f(address of the tap), guarded by a bounds check only when the window has padding.
 */
export function windowTaps(e: Emitter, p: PoolWindow, oh: Local, ow: Local, H: number, W: number, plane: Local, f: (at: X) => X): X[] {
  const taps: X[] = [];
  for (let kh = 0; kh < p.kh; kh++)
    for (let kw = 0; kw < p.kw; kw++) {
      const ih = e.addc(e.mulc(oh.get(), p.sh), kh - p.ph);
      const iw = e.addc(e.mulc(ow.get(), p.sw), kw - p.pw);
      const tap = f(e.add(plane.get(), e.mulc(e.add(e.mulc(ih, W), iw), 4)));
      taps.push(p.ph || p.pw ? e.if(inBounds(e, e.copyExpr(ih), e.copyExpr(iw), H, W), [tap]) : tap);
    }
  return taps;
}
