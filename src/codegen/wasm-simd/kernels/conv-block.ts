import type { ViewOf } from '../../../ir/kernel-kind.ts';
import { KERNEL_KINDS, type ConvAttrs } from '../../../ir/kernels.ts';
import { windowOut } from '../../../ir/shape.ts';
import { opKernel } from '../expr.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import { convPoolImage, padImage } from '../conv.ts';
import { ats, derive, onThread0, PARALLEL_MIN, sharedLoop, type At, type KernelCtx } from '../kernel.ts';
import { avgPool2d } from './avg-pool2d.ts';
import { conv2d } from './conv2d.ts';
import { maxPool2d } from './max-pool2d.ts';
import { inBounds, isPair, perPlane } from './pool.ts';
import { convBlockPoolAttrs as poolAttrs, poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';

type ConvBlockView = ViewOf<typeof KERNEL_KINDS.conv_block, At>;

/** [N, O, HO, WO] of the block's convolution. */
export function convShape(a: ConvAttrs, x: readonly number[], w: readonly number[]): number[] {
  const [sh, sw] = a.stride;
  const [ph, pw] = a.padding;
  return [x[0]!, w[0]!, windowOut(x[2]!, w[2]!, sh, ph), windowOut(x[3]!, w[3]!, sw, pw)];
}

/**
 * c = conv2d(x, w) + b; a = relu(c) or c; y = pool(a), and the argmax of each max window when
 * asked. This general form keeps a in scratch and runs the plain kernels one after another.
 */
export function convBlock(c: KernelCtx): void {
  const v = KERNEL_KINDS.conv_block.read(ats(c));
  const { attrs: a, inputs: { x, w, b }, outputs: { y, argmax } } = v;
  if (a.pool === 'max' && isPair(poolWindow(c.k.attrs, 'pool'))) return convPool(c, v);
  const aShape = convShape(a, x.shape, w.shape);
  const act: At = a.pool === 'none' ? y : { addr: c.sharedScratch(4 * aShape.reduce((p, d) => p * d, 1)), shape: aShape };
  conv2d(derive(c, 'conv2d', { stride: a.stride, padding: a.padding }, b ? [x, w, b] : [x, w], [act]));
  if (a.act === 'relu') opKernel(derive(c, 'relu', {}, [act], [act]));
  if (a.pool === 'none') return;
  (a.pool === 'max' ? maxPool2d : avgPool2d)(derive(c, a.pool === 'max' ? 'max_pool2d' : 'avg_pool2d', poolAttrs(c.k.attrs), [act], [y]));
  if (argmax) emitArgmax(c, act, poolWindow(c.k.attrs, 'pool'), argmax);
}

/**
 * Byte offset in its plane of a window's maximum, by the reference rule (row-major scan, move to
 * a strictly greater value or to a NaN): statements that leave it in `bi`.
 */
export function argmaxOf(e: Emitter, fn: Fn, px: Local, H: number, W: number, oh: X, ow: X, p: PoolWindow, bi: Local): X[] {
  const m = e.m;
  const bv = fn.f32();
  const v = fn.f32();
  const s: X[] = [bi.set(e.i32(-1))];
  for (let kh = 0; kh < p.kh; kh++)
    for (let kw = 0; kw < p.kw; kw++) {
      const ih = e.addc(e.mulc(e.copyExpr(oh), p.sh), kh - p.ph);
      const iw = e.addc(e.mulc(e.copyExpr(ow), p.sw), kw - p.pw);
      const off = e.mulc(e.add(e.mulc(ih, W), iw), 4);
      const take = m.i32.or(m.i32.or(m.i32.lt_s(bi.get(), e.i32(0)), m.f32.gt(v.tee(e.loadf(e.add(px.get(), off))), bv.get())), m.f32.ne(v.get(), v.get()));
      const upd = e.if(take, [bi.set(e.copyExpr(off)), bv.set(v.get())]);
      s.push(p.ph || p.pw ? e.if(inBounds(e, e.copyExpr(ih), e.copyExpr(iw), H, W), [upd]) : upd);
    }
  return s;
}

/** idx[n, o, ph, pw] = position ih·W + iw of the window maximum in its plane of a, as f32. */
function emitArgmax(c: KernelCtx, act: At, p: PoolWindow, idx: At): void {
  const { e } = c;
  const m = e.m;
  const [N, C, H, W] = act.shape as [number, number, number, number];
  const [, , PH, PW] = idx.shape as [number, number, number, number];
  c.phase((fn, tid) => {
    const px = fn.i32();
    const oh = fn.i32();
    const ow = fn.i32();
    const bi = fn.i32();
    return perPlane(c, fn, tid, N * C, N * C * H * W, (pl) => [
      px.set(e.add(e.i32(act.addr), e.mulc(pl.get(), 4 * H * W))),
      e.forc(oh, 0, PH, 1, [
        e.forc(ow, 0, PW, 1, [
          ...argmaxOf(e, fn, px, H, W, oh.get(), ow.get(), p, bi),
          e.storef(e.add(e.i32(idx.addr), e.mulc(e.add(e.mulc(pl.get(), PH * PW), e.add(e.mulc(oh.get(), PW), ow.get())), 4)), m.f32.convert_s.i32(m.i32.shr_u(bi.get(), e.i32(2)))),
        ]),
      ]),
    ]);
  });
}

/**
 * The fast form for a 2×2 stride-2 max pool: convolution, ReLU and pool (and the argmax, when
 * the backward wants it stored) of each image in registers (convPoolImage), threads taking whole
 * images; a padded input is first copied into this thread's scratch with its zero border, as
 * conv2d does.
 */
function convPool(c: KernelCtx, { attrs: a, inputs: { x, w, b }, outputs: { y, argmax } }: ConvBlockView): void {
  const { e } = c;
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, , KH, KW] = w.shape as [number, number, number, number];
  const [, , PH, PW] = y.shape as [number, number, number, number];
  const [sh, sw] = a.stride;
  const [ph, pw] = a.padding;
  const padded = ph > 0 || pw > 0;
  const Hp = H + 2 * ph;
  const Wp = W + 2 * pw;
  c.phase((fn, tid) => {
    const n = fn.i32();
    const img = fn.i32();
    const out = fn.i32();
    const scratch = fn.i32();
    const parallel = e.T > 1 && N >= e.T && N * O * PH * PW * 4 * C * KH * KW >= PARALLEL_MIN;
    const idx = argmax ? fn.i32() : undefined;
    const [, , HO, WO] = convShape(a, x.shape, w.shape);
    const perImage: X[] = [
      ...(padded ? padImage(e, fn, scratch, x.addr, n, C, H, W, ph, pw) : []),
      img.set(padded ? scratch.get() : e.add(e.i32(x.addr), e.mulc(n.get(), 4 * C * H * W))),
      out.set(e.add(e.i32(y.addr), e.mulc(n.get(), 4 * O * PH * PW))),
      ...(idx ? [idx.set(e.add(e.i32(argmax!.addr), e.mulc(n.get(), 4 * O * PH * PW)))] : []),
      ...convPoolImage(e, fn, { C, Hp, Wp, O, KH, KW, sh, sw, HO: HO!, WO: WO!, w: w.addr, bias: b?.addr, PH, PW, relu: a.act === 'relu' }, img, out, idx),
    ];
    const init = padded ? [scratch.set(c.threadScratch(4 * C * Hp * Wp, tid))] : [];
    if (parallel) return [...init, ...sharedLoop(c, fn, n, N, perImage)];
    return onThread0(e, tid, [...init, e.forc(n, 0, N, 1, perImage)]);
  });
}
