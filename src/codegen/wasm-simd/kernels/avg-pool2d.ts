import { numel } from '../../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { KernelCtx } from '../kernel.ts';
import { perPlane, windowTaps } from './pool.ts';
import { poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';

/** Mean over each window, dividing by kh·kw (count_include_pad, PyTorch's default). */
export function avgPool2d(c: KernelCtx): void {
  const [N, C] = c.inShape(0) as [number, number];
  const dims = { xShape: c.inShape(0), yShape: c.outShape(0) };
  const p = poolWindow(c.k.attrs);
  c.phase((fn, tid) => perPlane(c, fn, tid, N * C, numel(c.inShape(0)), (pl) => avgPoolPlane(c.e, fn, p, dims, c.inAddr(0), c.outAddr(0), pl)));
}

/** Plane `pl` of the average pool of x (at `x`) into y (at `y`) (see maxPoolPlane). */
export function avgPoolPlane(e: Emitter, fn: Fn, p: PoolWindow, dims: { xShape: Shape; yShape: Shape }, x: number, y: number, pl: Local): X[] {
  const m = e.m;
  const [, , H, W] = dims.xShape as [number, number, number, number];
  const [, , HO, WO] = dims.yShape as [number, number, number, number];
  const px = fn.i32();
  const oh = fn.i32();
  const ow = fn.i32();
  const acc = fn.f32();
  const taps = windowTaps(e, p, oh, ow, H, W, px, (at) => acc.set(m.f32.add(acc.get(), e.loadf(at))));
  return [
    px.set(e.add(e.i32(x), e.mulc(pl.get(), 4 * H * W))),
    e.forc(oh, 0, HO, 1, [
      e.forc(ow, 0, WO, 1, [
        acc.set(e.f32(0)),
        ...taps,
        e.storef(e.add(e.i32(y), e.mulc(e.add(e.mulc(pl.get(), HO * WO), e.add(e.mulc(oh.get(), WO), ow.get())), 4)), m.f32.div(acc.get(), e.f32(p.kh * p.kw))),
      ]),
    ]),
  ];
}
