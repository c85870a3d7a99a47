import { ints } from '../../../ir/op.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { KernelCtx } from '../kernel.ts';
import { perPlane, windowTaps } from './pool.ts';
import { poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';

/** Spreads g/(kh·kw) over each window; overlapping windows add. */
export function avgPool2dGrad(c: KernelCtx): void {
  const [N, C] = c.inShape(0) as [number, number];
  const xShape = ints(c.k.attrs, 'shape');
  const [, , H, W] = xShape as [number, number, number, number];
  const p = poolWindow(c.k.attrs);
  const dims = { gShape: c.inShape(0), xShape };
  c.phase((fn, tid) =>
    perPlane(c, fn, tid, N * C, N * C * H * W, (pl) => avgPoolGradPlane(c.e, fn, p, dims, c.inAddr(0), pl, c.e.add(c.e.i32(c.outAddr(0)), c.e.mulc(pl.get(), 4 * H * W)))),
  );
}

/** Plane `pl` of the average pool's backward of g (at `g`), written at `dst` (see maxPoolGradPlane). */
export function avgPoolGradPlane(e: Emitter, fn: Fn, p: PoolWindow, dims: { gShape: Shape; xShape: Shape }, g: number, pl: Local, dst: X): X[] {
  const m = e.m;
  const [, , HO, WO] = dims.gShape as [number, number, number, number];
  const [, , H, W] = dims.xShape as [number, number, number, number];
  const pd = fn.i32();
  const oh = fn.i32();
  const ow = fn.i32();
  const share = fn.f32();
  const taps = windowTaps(e, p, oh, ow, H, W, pd, (at) => e.storef(at, m.f32.add(e.loadf(e.copyExpr(at)), share.get())));
  return [
    pd.set(dst),
    m.memory.fill(pd.get(), e.i32(0), e.i32(4 * H * W)),
    e.forc(oh, 0, HO, 1, [
      e.forc(ow, 0, WO, 1, [
        share.set(m.f32.div(e.loadf(e.add(e.i32(g), e.mulc(e.add(e.mulc(pl.get(), HO * WO), e.add(e.mulc(oh.get(), WO), ow.get())), 4))), e.f32(p.kh * p.kw))),
        ...taps,
      ]),
    ]),
  ];
}
