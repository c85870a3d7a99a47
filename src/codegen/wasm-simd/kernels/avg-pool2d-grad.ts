import { ints } from '../../../ir/op.ts';
import type { X } from '../emitter.ts';
import type { KernelCtx } from '../kernel.ts';
import { perPlane, windowTaps } from './pool.ts';
import { poolWindow } from '../../../ir/ops/pool.ts';

/** Spreads g/(kh·kw) over each window; overlapping windows add. */
export function avgPool2dGrad(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const [N, C, HO, WO] = c.inShape(0) as [number, number, number, number];
  const [, , H, W] = ints(c.k.attrs, 'shape') as [number, number, number, number];
  const p = poolWindow(c.k.attrs);
  const g = c.inAddr(0);
  const dx = c.outAddr(0);
  c.phase((fn, tid) => {
    const pd = fn.i32();
    const oh = fn.i32();
    const ow = fn.i32();
    const share = fn.f32();
    const body = (pl: { get(): X }): X[] => {
      const taps = windowTaps(e, p, oh, ow, H, W, pd, (at) => e.storef(at, m.f32.add(e.loadf(e.copyExpr(at)), share.get())));
      return [
        pd.set(e.add(e.i32(dx), e.mulc(pl.get(), 4 * H * W))),
        m.memory.fill(pd.get(), e.i32(0), e.i32(4 * H * W)),
        e.forc(oh, 0, HO, 1, [
          e.forc(ow, 0, WO, 1, [
            share.set(m.f32.div(e.loadf(e.add(e.i32(g), e.mulc(e.add(e.mulc(pl.get(), HO * WO), e.add(e.mulc(oh.get(), WO), ow.get())), 4))), e.f32(p.kh * p.kw))),
            ...taps,
          ]),
        ]),
      ];
    };
    return perPlane(c, fn, tid, N * C, N * C * H * W, body);
  });
}
