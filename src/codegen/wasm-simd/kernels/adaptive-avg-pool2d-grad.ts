import { ints } from '../../../ir/op.ts';
import type { X } from '../emitter.ts';
import type { KernelCtx } from '../kernel.ts';
import { binBounds } from './adaptive-avg-pool2d.ts';
import { perPlane } from './pool.ts';

/**
 * Spreads g/count over each bin; overlapping bins add. Global pooling's backward (size [1, 1]) is
 * a splat of g/(H·W) stored over the plane, four floats at a time.
 */
export function adaptiveAvgPool2dGrad(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const [N, C, HO, WO] = c.inShape(0) as [number, number, number, number];
  const [, , H, W] = ints(c.k.attrs, 'shape') as [number, number, number, number];
  const g = c.inAddr(0);
  const dx = c.outAddr(0);
  const HW = H * W;
  c.phase((fn, tid) => {
    const pd = fn.i32();
    const gAt = (pl: { get(): X }, cell: X) => e.loadf(e.add(e.i32(g), e.mulc(e.add(e.mulc(pl.get(), HO * WO), cell), 4)));
    if (HO === 1 && WO === 1) {
      const v = fn.v128();
      const i = fn.i32();
      const tail = HW % 4;
      const body = (pl: { get(): X }): X[] => [
        pd.set(e.add(e.i32(dx), e.mulc(pl.get(), 4 * HW))),
        v.set(e.splat(m.f32.div(gAt(pl, e.i32(0)), e.f32(HW)))),
        e.forc(i, 0, HW - tail, 4, [e.vstore(e.add(pd.get(), e.mulc(i.get(), 4)), v.get())]),
        ...(tail ? [e.vstoreN(e.addc(pd.get(), 4 * (HW - tail)), v.get(), tail)] : []),
      ];
      return perPlane(c, fn, tid, N * C, N * C * HW, body);
    }
    const oh = fn.i32();
    const ow = fn.i32();
    const ih = fn.i32();
    const iw = fn.i32();
    const share = fn.f32();
    const rows = binBounds(c, fn, oh, H, HO);
    const cols = binBounds(c, fn, ow, W, WO);
    const count = m.f32.convert_u.i32(e.mul(e.sub(rows.hi.get(), rows.lo.get()), e.sub(cols.hi.get(), cols.lo.get())));
    const body = (pl: { get(): X }): X[] => {
      const at = () => e.add(pd.get(), e.mulc(e.add(e.mulc(ih.get(), W), iw.get()), 4));
      return [
        pd.set(e.add(e.i32(dx), e.mulc(pl.get(), 4 * HW))),
        m.memory.fill(pd.get(), e.i32(0), e.i32(4 * HW)),
        e.forc(oh, 0, HO, 1, [
          ...rows.set,
          e.forc(ow, 0, WO, 1, [
            ...cols.set,
            share.set(m.f32.div(gAt(pl, e.add(e.mulc(oh.get(), WO), ow.get())), count)),
            e.for(ih, rows.lo.get(), rows.hi.get(), 1, [e.for(iw, cols.lo.get(), cols.hi.get(), 1, [e.storef(at(), m.f32.add(e.loadf(at()), share.get()))])]),
          ]),
        ]),
      ];
    };
    return perPlane(c, fn, tid, N * C, N * C * HW, body);
  });
}
