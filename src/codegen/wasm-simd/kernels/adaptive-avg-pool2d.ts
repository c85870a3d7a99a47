import { numel } from '../../../ir/shape.ts';
import type { Fn, Local, X } from '../emitter.ts';
import type { KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';
import { perPlane } from './pool.ts';

/**
 * Locals holding the bin [lo, hi) of index `i` over an axis of `size` split into `out` bins
 * (adaptiveBin's rule, src/ir/ops/pool.ts, in integer arithmetic: floor(i·size/out) and
 * ceil((i+1)·size/out)).
 */
export function binBounds(c: KernelCtx, fn: Fn, i: Local, size: number, out: number): { lo: Local; hi: Local; set: X[] } {
  const { e } = c;
  const m = e.m;
  const lo = fn.i32();
  const hi = fn.i32();
  return {
    lo,
    hi,
    set: [lo.set(m.i32.div_u(e.mulc(i.get(), size), e.i32(out))), hi.set(m.i32.div_u(e.addc(e.mulc(i.get(), size), size + out - 1), e.i32(out)))],
  };
}

/**
 * The mean of each bin. Global average pooling (size [1, 1], ResNet's head) is a per-plane sum
 * over H·W contiguous floats: the vectorised, thread-split reduction of `sum`. Other sizes walk
 * each bin with scalar loops (bins differ in size where the output does not divide the input).
 */
export function adaptiveAvgPool2d(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const xs = c.inShape(0);
  const [N, C, H, W] = xs as [number, number, number, number];
  const [, , HO, WO] = c.outShape(0) as [number, number, number, number];
  const x = c.inAddr(0);
  const y = c.outAddr(0);
  if (HO === 1 && WO === 1) {
    emitReduce(c, { domain: xs, reduced: [false, false, true, true], out: y, ins: [{ addr: x, shape: xs }], f: ([v]) => v!, post: (s) => m.f32.div(s, e.f32(H * W)) });
    return;
  }
  c.phase((fn, tid) => {
    const px = fn.i32();
    const oh = fn.i32();
    const ow = fn.i32();
    const ih = fn.i32();
    const iw = fn.i32();
    const acc = fn.f32();
    const rows = binBounds(c, fn, oh, H, HO);
    const cols = binBounds(c, fn, ow, W, WO);
    const count = m.f32.convert_u.i32(e.mul(e.sub(rows.hi.get(), rows.lo.get()), e.sub(cols.hi.get(), cols.lo.get())));
    const body = (pl: { get(): X }): X[] => [
      px.set(e.add(e.i32(x), e.mulc(pl.get(), 4 * H * W))),
      e.forc(oh, 0, HO, 1, [
        ...rows.set,
        e.forc(ow, 0, WO, 1, [
          ...cols.set,
          acc.set(e.f32(0)),
          e.for(ih, rows.lo.get(), rows.hi.get(), 1, [
            e.for(iw, cols.lo.get(), cols.hi.get(), 1, [acc.set(m.f32.add(acc.get(), e.loadf(e.add(px.get(), e.mulc(e.add(e.mulc(ih.get(), W), iw.get()), 4)))))]),
          ]),
          e.storef(e.add(e.i32(y), e.mulc(e.add(e.mulc(pl.get(), HO * WO), e.add(e.mulc(oh.get(), WO), ow.get())), 4)), m.f32.div(acc.get(), count)),
        ]),
      ]),
    ];
    return perPlane(c, fn, tid, N * C, numel(xs), body);
  });
}
