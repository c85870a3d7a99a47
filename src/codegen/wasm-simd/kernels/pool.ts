import type { Node } from '../../../ir/graph.ts';
import { pair } from '../../../ir/op.ts';
import type { Kernel } from '../../../ir/program.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import { PARALLEL_MIN, span, onThread0, type KernelCtx } from '../kernel.ts';

// Shared by the pooling kernels: window attributes, the per-plane loop split across threads, and
// the lane shuffles of the 2×2 stride-2 fast paths.

export interface Window {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

export function windowOf(k: Kernel | Node): Window {
  const [kh, kw] = pair(k.attrs, 'kernel');
  const [sh, sw] = pair(k.attrs, 'stride');
  const [ph, pw] = pair(k.attrs, 'padding');
  return { kh, kw, sh, sw, ph, pw };
}

/** The 2×2 stride-2 unpadded window of SimpleCNN and LeNet: vectorised. */
export function isPair(p: Window): boolean {
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

const lanes = (...idx: number[]) => idx.flatMap((i) => [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]);
/** Lanes 0, 2, 4, 6 of the 8 floats in (a, b). */
export const EVEN = lanes(0, 2, 4, 6);
/** Lanes 1, 3, 5, 7. */
export const ODD = lanes(1, 3, 5, 7);
/** Interleaves a and b: a0 b0 a1 b1 / a2 b2 a3 b3. */
export const ZIP_LO = lanes(0, 4, 1, 5);
export const ZIP_HI = lanes(2, 6, 3, 7);

/** ih in [0, H) and iw in [0, W) (negative values compare as huge unsigned). */
export function inBounds(e: Emitter, ih: X, iw: X, H: number, W: number): X {
  const m = e.m;
  return m.i32.and(m.i32.lt_u(ih, e.i32(H)), m.i32.lt_u(iw, e.i32(W)));
}
