import { numel } from '../../../ir/shape.ts';
import { opKernel } from '../expr.ts';
import { emitGemm } from '../gemm.ts';
import { convPoolGradChannels, padImage } from '../conv.ts';
import type { ViewOf } from '../../../ir/kernel-kind.ts';
import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { ats, derive, onThread0, PARALLEL_MIN, sharedLoop, span, type At, type KernelCtx } from '../kernel.ts';
import { avgPool2dGrad } from './avg-pool2d-grad.ts';
import { convBlock, convShape } from './conv-block.ts';
import { convBlockPoolAttrs as poolAttrs, poolWindow } from '../../../ir/ops/pool.ts';
import { conv2dGradInput } from './conv2d-grad-input.ts';
import { conv2dGradWeight } from './conv2d-grad-weight.ts';
import { maxPool2dGrad } from './max-pool2d-grad.ts';
import { isPair, perPlane } from './pool.ts';
import { sum } from './sum.ts';

type ConvBlockGradView = ViewOf<typeof KERNEL_KINDS.conv_block_grad, At>;

/**
 * The backward of a conv block (src/ir/kernels.ts): gy (or g2·w2 when folded) routed back through
 * the pooling to gc, masked by the ReLU, then dw, db and dx. This general form builds gc in
 * scratch with the plain kernels and runs the plain convolution gradients on it.
 */
export function convBlockGrad(c: KernelCtx): void {
  const { attrs: a, inputs, outputs } = KERNEL_KINDS.conv_block_grad.read(ats(c));
  const { y, argmax: idx, x, w, b } = inputs;
  const { dw: dwOut, db, dx } = outputs;
  const aShape = convShape(a, x.shape, dwOut.shape);
  const yShape = a.pool === 'none' ? aShape : [aShape[0]!, aShape[1]!, ...poolOut(c.k.attrs, aShape)];
  const scratch = (shape: number[]): At => ({ addr: c.sharedScratch(4 * numel(shape)), shape });
  const fast = (a.saved === 'recompute' || a.saved === 'argmax') && a.pool === 'max' && isPair(poolWindow(c.k.attrs, 'pool')) && !a.dx && dwOut.shape[3]! <= 4;

  // gy: given, or the next linear layer's input gradient g2·w2 viewed as y's shape.
  let gy: At;
  if (inputs.g2) {
    const { g2, w2 } = inputs;
    const [N, K] = g2.shape as [number, number];
    const F = w2!.shape[1]!;
    gy = scratch(yShape);
    emitGemm(c, { M: N, N: F, K, a: g2.addr, aM: K, aK: 1, b: w2!.addr, bK: F, bN: 1, c: gy.addr });
  } else {
    gy = { addr: inputs.gy!.addr, shape: yShape };
  }

  if (fast) return convPoolGrad(c, a, gy, x, w, b, dwOut, db, y && idx ? { y: y.addr, argmax: idx.addr } : undefined);

  let gc: At;
  if (a.saved === 'argmax') {
    gc = scratch(aShape);
    routeToArgmax(c, gy, y!, idx!, gc, a.act === 'relu');
  } else if (a.saved === 'output') {
    gc = scratch(aShape);
    opKernel(derive(c, 'relu_grad', {}, [gy, { addr: y!.addr, shape: aShape }], [gc]));
  } else {
    let act: At | undefined;
    if (a.saved === 'recompute') {
      // a = the block's activation, recomputed: a conv_block without pooling.
      act = scratch(aShape);
      const k = KERNEL_KINDS.conv_block.build({ stride: a.stride, padding: a.padding, bias: a.bias, act: a.act, pool: 'none', argmax: false }, { x, w: w!, b }, { y: act });
      convBlock(derive(c, k.kind, k.attrs, k.inputs, k.outputs));
    }
    let ga: At = gy;
    if (a.pool === 'max') {
      ga = scratch(aShape);
      maxPool2dGrad(derive(c, 'max_pool2d_grad', poolAttrs(a), [gy, act!], [ga]));
    } else if (a.pool === 'avg') {
      ga = scratch(aShape);
      avgPool2dGrad(derive(c, 'avg_pool2d_grad', { ...poolAttrs(a), shape: aShape }, [gy], [ga]));
    }
    gc = ga;
    if (a.act === 'relu') {
      gc = scratch(aShape);
      opKernel(derive(c, 'relu_grad', {}, [ga, act!], [gc]));
    }
  }

  const conv = { stride: a.stride, padding: a.padding };
  conv2dGradWeight(derive(c, 'conv2d_grad_weight', { ...conv, shape: dwOut.shape }, [gc, x], [dwOut]));
  if (db) sum(derive(c, 'sum', { axes: [0, 2, 3], keepdim: false }, [gc], [db]));
  if (dx) conv2dGradInput(derive(c, 'conv2d_grad_input', { ...conv, shape: x.shape }, [gc, w!], [dx]));
}

function poolOut(a: KernelCtx['k']['attrs'], s: readonly number[]): [number, number] {
  const p = poolWindow(a, 'pool');
  return [Math.floor((s[2]! + 2 * p.ph - p.kh) / p.sh) + 1, Math.floor((s[3]! + 2 * p.pw - p.kw) / p.sw) + 1];
}

/**
 * gc = 0, then each cell's gradient added at its stored argmax (overlapping windows add), then
 * the ReLU mask: zero where the window's maximum y is not > 0. Threads take whole planes.
 */
function routeToArgmax(c: KernelCtx, gy: At, y: At, idx: At, gc: At, relu: boolean): void {
  const { e } = c;
  const m = e.m;
  const [N, O, H, W] = gc.shape as [number, number, number, number];
  const cells = gy.shape[2]! * gy.shape[3]!;
  c.phase((fn, tid) => {
    const plane = fn.i32();
    const cell = fn.i32();
    const at = fn.i32();
    const src = fn.i32();
    return perPlane(c, fn, tid, N * O, N * O * H * W, (pl) => {
      const route = (mask: boolean) => [
        src.set(e.add(e.mulc(pl.get(), 4 * cells), e.mulc(cell.get(), 4))),
        at.set(e.add(plane.get(), e.mulc(m.i32.trunc_s_sat.f32(e.loadf(e.add(e.i32(idx.addr), src.get()))), 4))),
        mask
          ? e.if(m.i32.eqz(m.f32.gt(e.loadf(e.add(e.i32(y.addr), src.get())), e.f32(0))), [e.storef(at.get(), e.f32(0))])
          : e.storef(at.get(), m.f32.add(e.loadf(at.get()), e.loadf(e.add(e.i32(gy.addr), src.get())))),
      ];
      return [
        plane.set(e.add(e.i32(gc.addr), e.mulc(pl.get(), 4 * H * W))),
        m.memory.fill(plane.get(), e.i32(0), e.i32(4 * H * W)),
        e.forc(cell, 0, cells, 1, route(false)),
        ...(relu ? [e.forc(cell, 0, cells, 1, route(true))] : []),
      ];
    });
  });
}

/**
 * The fast form for a conv → relu → 2×2/2 max pool block without dx (SimpleCNN's): threads take
 * pairs of output channels, and convPoolGradChannels recomputes each tile and finds the argmax
 * (or reads the stored one), masks and correlates in registers; no gradient tensor of the conv's
 * size is ever written. A padded input is copied once, image by image, into a zero-bordered
 * shared buffer first.
 */
function convPoolGrad(c: KernelCtx, a: ConvBlockGradView['attrs'], gy: At, x: At, w: At | undefined, b: At | undefined, dw: At, db: At | undefined, saved: { y: number; argmax: number } | undefined): void {
  const { e } = c;
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [O, , KH, KW] = dw.shape as [number, number, number, number];
  const [, , PH, PW] = gy.shape as [number, number, number, number];
  const [sh, sw] = a.stride;
  const [ph, pw] = a.padding;
  const padded = ph > 0 || pw > 0;
  const Hp = H + 2 * ph;
  const Wp = W + 2 * pw;
  let xs = x.addr;
  if (padded) {
    xs = c.sharedScratch(4 * N * C * Hp * Wp);
    c.phase((fn, tid) => {
      const n = fn.i32();
      const dst = fn.i32();
      const body = [dst.set(e.add(e.i32(xs), e.mulc(n.get(), 4 * C * Hp * Wp))), ...padImage(e, fn, dst, x.addr, n, C, H, W, ph, pw)];
      if (e.T > 1 && N >= e.T) {
        const s = span(e, fn, tid, N);
        return [...s.init, e.for(n, s.lo.get(), s.hi.get(), 1, body)];
      }
      return onThread0(e, tid, [e.forc(n, 0, N, 1, body)]);
    });
  }
  c.phase((fn, tid) => {
    const o = fn.i32();
    const [, , HO, WO] = convShape(a, x.shape, dw.shape);
    const p = { C, Hp, Wp, O, KH, KW, sh, sw, HO: HO!, WO: WO!, w: w?.addr ?? 0, bias: b?.addr, PH, PW, relu: a.act === 'relu', gy: gy.addr, saved };
    const image = (n: { get(): number }) => e.add(e.i32(xs), e.mulc(n.get(), 4 * C * Hp * Wp));
    const sums = fn.i32();
    // Channels in pairs (one recomputed tile feeds both), a last single one when O is odd.
    const pairs = Math.floor(O / 2);
    const body = (ob: number) => convPoolGradChannels(e, fn, p, N, image, o, ob, sums.get(), e.i32(dw.addr), db ? e.i32(db.addr) : undefined);
    const init = [sums.set(c.threadScratch(2 * 16 * 2 * C * KH, tid))];
    // Work item i < pairs: channels 2i, 2i+1; i = pairs (O odd): the last channel.
    const item = fn.i32();
    const work = [o.set(e.mulc(item.get(), 2)), ...(O % 2 ? [e.if(e.m.i32.eq(item.get(), e.i32(pairs)), body(1), body(2))] : body(2))];
    const items = pairs + (O % 2);
    if (e.T > 1 && items >= e.T && N * O * PH * PW * 4 * C * KH * KW >= PARALLEL_MIN) return [...init, ...sharedLoop(c, fn, item, items, work)];
    return onThread0(e, tid, [...init, e.forc(item, 0, items, 1, work)]);
  });
}
