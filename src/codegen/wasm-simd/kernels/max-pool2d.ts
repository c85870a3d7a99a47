import { numel } from '../../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { KernelCtx } from '../kernel.ts';
import { EVEN, ODD } from '../emitter.ts';
import { inBounds, isPair, perPlane } from './pool.ts';
import { poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';

/**
 * Max over each window; padding is -inf. f32.max propagates NaN, as PyTorch does, and the value
 * (unlike the position) does not depend on the tie rule. 2×2 stride 2: four deinterleaved vectors
 * per 4 outputs (two loads and two shuffles per input row).
 */
export function maxPool2d(c: KernelCtx): void {
  const [N, C] = c.inShape(0) as [number, number];
  const dims = { xShape: c.inShape(0), yShape: c.outShape(0) };
  const p = poolWindow(c.k.attrs);
  c.phase((fn, tid) => perPlane(c, fn, tid, N * C, numel(c.inShape(0)), (pl) => maxPoolPlane(c.e, fn, p, dims, c.inAddr(0), c.outAddr(0), pl)));
}

/** Plane `pl` of the max pool of x (at `x`) into y (at `y`): the kernel's body, also run by batch_norm_stats with a pool. */
export function maxPoolPlane(e: Emitter, fn: Fn, p: PoolWindow, dims: { xShape: Shape; yShape: Shape }, x: number, y: number, pl: Local): X[] {
  const m = e.m;
  const [, , H, W] = dims.xShape as [number, number, number, number];
  const [, , HO, WO] = dims.yShape as [number, number, number, number];
  const px = fn.i32();
  const py = fn.i32();
  const oh = fn.i32();
  const ow = fn.i32();
  const head = [px.set(e.add(e.i32(x), e.mulc(pl.get(), 4 * H * W))), py.set(e.add(e.i32(y), e.mulc(pl.get(), 4 * HO * WO)))];
  if (isPair(p)) {
    const a = fn.v128();
    const b = fn.v128();
    const r = fn.v128();
    const vec = (lanes: number): X[] => {
      const row = (off: number) => [a.set(e.vload(px.get(), off)), b.set(e.vload(px.get(), off + 16)), e.vmax(m.i8x16.shuffle(a.get(), b.get(), EVEN), m.i8x16.shuffle(a.get(), b.get(), ODD))];
      const [a0, b0, r0] = row(0);
      const [a1, b1, r1] = row(4 * W);
      return [a0!, b0!, r.set(r0!), a1!, b1!, r.set(e.vmax(r.get(), r1!)), e.vstoreN(py.get(), r.get(), lanes), px.set(e.addc(px.get(), 32)), py.set(e.addc(py.get(), 16))];
    };
    const W4 = WO - (WO % 4);
    // Per output row: px moves 2 input rows, minus what the column loop advanced.
    const colAdvance = 32 * Math.ceil(WO / 4);
    return [
      ...head,
      e.forc(oh, 0, HO, 1, [
        e.forc(ow, 0, W4, 4, vec(4)),
        ...(WO % 4 ? vec(WO % 4) : []),
        px.set(e.addc(px.get(), 8 * W - colAdvance)),
        py.set(e.addc(py.get(), 4 * WO - 16 * Math.ceil(WO / 4))),
      ]),
    ];
  }
  const best = fn.f32();
  const taps: X[] = [];
  for (let kh = 0; kh < p.kh; kh++)
    for (let kw = 0; kw < p.kw; kw++) {
      const ih = e.addc(e.mulc(oh.get(), p.sh), kh - p.ph);
      const iw = e.addc(e.mulc(ow.get(), p.sw), kw - p.pw);
      const v = m.f32.max(best.get(), e.loadf(e.add(px.get(), e.mulc(e.add(e.mulc(ih, W), iw), 4))));
      const upd = best.set(v);
      taps.push(p.ph || p.pw ? e.if(inBounds(e, e.copyExpr(ih), e.copyExpr(iw), H, W), [upd]) : upd);
    }
  return [
    ...head,
    e.forc(oh, 0, HO, 1, [
      e.forc(ow, 0, WO, 1, [best.set(e.f32(-Infinity)), ...taps, e.storef(e.add(py.get(), e.mulc(e.add(e.mulc(oh.get(), WO), ow.get()), 4)), best.get())]),
    ]),
  ];
}
