import { numel } from '../../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { KernelCtx } from '../kernel.ts';
import { EVEN, ODD, ZIP_HI, ZIP_LO } from '../emitter.ts';
import { inBounds, isPair, perPlane } from './pool.ts';
import { poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';

/**
 * Routes each g to its window's argmax, recomputed from x by the reference's rule (PyTorch's CPU
 * kernel): scan row-major, move to a strictly greater value or to any NaN, so ties go to the first
 * maximum. Overlapping windows add. Inputs (g, x).
 *
 * 2×2 stride 2: the four candidates of 4 windows are deinterleaved vectors; the choice is a lane
 * index kept with bitselect, g is masked into the four positions and interleaved back, so every
 * element of dx is written once (a plane is zeroed first only when a last odd row or column lies
 * outside every window).
 */
export function maxPool2dGrad(c: KernelCtx): void {
  const [N, C] = c.inShape(0) as [number, number];
  const dims = { gShape: c.inShape(0), xShape: c.inShape(1) };
  const [, , H, W] = c.inShape(1) as [number, number, number, number];
  const p = poolWindow(c.k.attrs);
  c.phase((fn, tid) =>
    perPlane(c, fn, tid, N * C, numel(c.inShape(1)), (pl) => maxPoolGradPlane(c.e, fn, p, dims, c.inAddr(0), c.inAddr(1), pl, c.e.add(c.e.i32(c.outAddr(0)), c.e.mulc(pl.get(), 4 * H * W)))),
  );
}

/**
 * Plane `pl` of the max pool's backward of g (at `g`, shape gShape) routed by x (at `x`, shape
 * xShape), written at `dst`: the kernel's body for one plane, also run by batch_norm_grad_stats
 * with gPool into a thread's scratch.
 */
export function maxPoolGradPlane(e: Emitter, fn: Fn, p: PoolWindow, dims: { gShape: Shape; xShape: Shape }, g: number, x: number, pl: Local, dst: X): X[] {
  const m = e.m;
  const [, , HO, WO] = dims.gShape as [number, number, number, number];
  const [, , H, W] = dims.xShape as [number, number, number, number];
  const px = fn.i32();
  const pg = fn.i32();
  const pd = fn.i32();
  const oh = fn.i32();
  const ow = fn.i32();
  const head = [
    px.set(e.add(e.i32(x), e.mulc(pl.get(), 4 * H * W))),
    pd.set(dst),
    pg.set(e.add(e.i32(g), e.mulc(pl.get(), 4 * HO * WO))),
  ];
  if (isPair(p)) {
    const [a, b, best, sel, take, gv, lo, hi] = [fn.v128(), fn.v128(), fn.v128(), fn.v128(), fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const q = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const vec = (lanes: number): X[] => {
      const s: X[] = [];
      for (const r of [0, 1]) {
        s.push(a.set(e.vload(px.get(), 4 * W * r)), b.set(e.vload(px.get(), 4 * W * r + 16)));
        s.push(q[2 * r]!.set(m.i8x16.shuffle(a.get(), b.get(), EVEN)), q[2 * r + 1]!.set(m.i8x16.shuffle(a.get(), b.get(), ODD)));
      }
      s.push(best.set(q[0]!.get()), sel.set(e.m.v128.const(new Uint8Array(16))));
      for (let j = 1; j < 4; j++) {
        s.push(take.set(m.v128.or(m.f32x4.gt(q[j]!.get(), best.get()), m.f32x4.ne(q[j]!.get(), q[j]!.get()))));
        s.push(best.set(m.v128.bitselect(q[j]!.get(), best.get(), take.get())), sel.set(m.v128.bitselect(m.i32x4.splat(e.i32(j)), sel.get(), take.get())));
      }
      s.push(gv.set(e.vloadN(pg.get(), lanes)));
      const part = (j: number) => m.v128.and(gv.get(), m.i32x4.eq(sel.get(), m.i32x4.splat(e.i32(j))));
      for (const r of [0, 1]) {
        s.push(lo.set(part(2 * r)), hi.set(part(2 * r + 1)));
        s.push(a.set(m.i8x16.shuffle(lo.get(), hi.get(), ZIP_LO)), b.set(m.i8x16.shuffle(lo.get(), hi.get(), ZIP_HI)));
        const floats = 2 * lanes;
        s.push(e.vstoreN(pd.get(), a.get(), Math.min(4, floats), 4 * W * r));
        if (floats > 4) s.push(e.vstoreN(pd.get(), b.get(), floats - 4, 4 * W * r + 16));
      }
      s.push(px.set(e.addc(px.get(), 32)), pd.set(e.addc(pd.get(), 32)), pg.set(e.addc(pg.get(), 16)));
      return s;
    };
    const W4 = WO - (WO % 4);
    const back = 32 * Math.ceil(WO / 4);
    const zero = H !== 2 * HO || W !== 2 * WO ? [m.memory.fill(e.copyExpr(pd.get()), e.i32(0), e.i32(4 * H * W))] : [];
    return [
      ...head,
      ...zero,
      e.forc(oh, 0, HO, 1, [
        e.forc(ow, 0, W4, 4, vec(4)),
        ...(WO % 4 ? vec(WO % 4) : []),
        px.set(e.addc(px.get(), 8 * W - back)),
        pd.set(e.addc(pd.get(), 8 * W - back)),
        pg.set(e.addc(pg.get(), 4 * WO - 16 * Math.ceil(WO / 4))),
      ]),
    ];
  }
  const bi = fn.i32();
  const bv = fn.f32();
  const v = fn.f32();
  const taps: X[] = [];
  for (let kh = 0; kh < p.kh; kh++)
    for (let kw = 0; kw < p.kw; kw++) {
      const ih = e.addc(e.mulc(oh.get(), p.sh), kh - p.ph);
      const iw = e.addc(e.mulc(ow.get(), p.sw), kw - p.pw);
      const off = e.mulc(e.add(e.mulc(ih, W), iw), 4);
      const take = m.i32.or(m.i32.or(m.i32.lt_s(bi.get(), e.i32(0)), m.f32.gt(v.tee(e.loadf(e.add(px.get(), off))), bv.get())), m.f32.ne(v.get(), v.get()));
      const upd = e.if(take, [bi.set(e.copyExpr(off)), bv.set(v.get())]);
      taps.push(p.ph || p.pw ? e.if(inBounds(e, e.copyExpr(ih), e.copyExpr(iw), H, W), [upd]) : upd);
    }
  const at = e.add(pd.get(), bi.get());
  return [
    ...head,
    m.memory.fill(e.copyExpr(pd.get()), e.i32(0), e.i32(4 * H * W)),
    e.forc(oh, 0, HO, 1, [
      e.forc(ow, 0, WO, 1, [
        bi.set(e.i32(-1)),
        ...taps,
        e.storef(at, m.f32.add(e.loadf(e.copyExpr(at)), e.loadf(e.add(pg.get(), e.mulc(e.add(e.mulc(oh.get(), WO), ow.get()), 4))))),
      ]),
    ]),
  ];
}
