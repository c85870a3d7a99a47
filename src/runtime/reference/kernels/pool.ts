import { adaptiveBin, poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';
import type { Shape } from '../../../ir/shape.ts';
import { storeFrom, type Arr, type RefKernel } from './common.ts';

/**
 * Flat index in x of the maximum of one window, PyTorch's CPU rule: scan the window row-major,
 * start from its first in-bounds element and move only to a strictly greater value (or a NaN,
 * which PyTorch propagates), so ties go to the first maximum. Padding is -inf: never chosen.
 */
export function argmax(x: Arr, plane: number, H: number, W: number, oh: number, ow: number, p: PoolWindow): number {
  let best = -1;
  let bestV = -Infinity;
  for (let kh = 0; kh < p.kh; kh++) {
    const ih = oh * p.sh - p.ph + kh;
    if (ih < 0 || ih >= H) continue;
    for (let kw = 0; kw < p.kw; kw++) {
      const iw = ow * p.sw - p.pw + kw;
      if (iw < 0 || iw >= W) continue;
      const i = plane + ih * W + iw;
      const v = x[i]!;
      if (best < 0 || v > bestV || Number.isNaN(v)) {
        best = i;
        bestV = v;
      }
    }
  }
  return best;
}

/** Calls f(outIndex, planeOffsetInX, oh, ow) for every pooled cell. */
export function eachCell(xs: Shape, os: Shape, f: (o: number, plane: number, oh: number, ow: number) => void): void {
  const [N, C, H, W] = xs;
  const [, , HO, WO] = os;
  for (let nc = 0; nc < N! * C!; nc++)
    for (let oh = 0; oh < HO!; oh++) for (let ow = 0; ow < WO!; ow++) f((nc * HO! + oh) * WO! + ow, nc * H! * W!, oh, ow);
}

/** Calls f(flatIndexInX) for every in-bounds element of a window. */
function eachInWindow(plane: number, H: number, W: number, oh: number, ow: number, p: PoolWindow, f: (i: number) => void): void {
  for (let kh = 0; kh < p.kh; kh++) {
    const ih = oh * p.sh - p.ph + kh;
    if (ih < 0 || ih >= H) continue;
    for (let kw = 0; kw < p.kw; kw++) {
      const iw = ow * p.sw - p.pw + kw;
      if (iw >= 0 && iw < W) f(plane + ih * W + iw);
    }
  }
}

/** Calls f(cellIndex, planeOffset, h0, h1, w0, w1) for every bin of an adaptive pooling of x into pooled. */
function eachBin(xs: Shape, pooled: Shape, f: (o: number, plane: number, h0: number, h1: number, w0: number, w1: number) => void): void {
  const [, , H, W] = xs;
  const [, , HO, WO] = pooled;
  eachCell(xs, pooled, (o, plane, oh, ow) => f(o, plane, ...adaptiveBin(oh, H!, HO!), ...adaptiveBin(ow, W!, WO!)));
}

export const poolKernels: Record<string, RefKernel> = {
  max_pool2d: (out, [x], node, [xs]) => {
    const p = poolWindow(node.attrs);
    eachCell(xs!, node.shape, (o, plane, oh, ow) => {
      out[o] = x![argmax(x!, plane, xs![2]!, xs![3]!, oh, ow, p)]!;
    });
  },

  // Recomputes each window's argmax from x by the same rule as the forward; overlapping windows
  // (stride < kernel) may route several gradients to one element, so they add.
  max_pool2d_grad: (out, [g, x], node, [gs, xs]) => {
    const p = poolWindow(node.attrs);
    const acc = new Float64Array(out.length);
    eachCell(xs!, gs!, (o, plane, oh, ow) => {
      acc[argmax(x!, plane, xs![2]!, xs![3]!, oh, ow, p)]! += g![o]!;
    });
    storeFrom(out, acc);
  },

  // count_include_pad=True: divide by kh·kw. PyTorch divides by the window clipped to the padded
  // input; with ceil_mode=False and padding <= kernel/2 (the shape rule) no window reaches past
  // the padding, so that is always kh·kw.
  avg_pool2d: (out, [x], node, [xs]) => {
    const p = poolWindow(node.attrs);
    eachCell(xs!, node.shape, (o, plane, oh, ow) => {
      let acc = 0;
      eachInWindow(plane, xs![2]!, xs![3]!, oh, ow, p, (i) => (acc += x![i]!));
      out[o] = acc / (p.kh * p.kw);
    });
  },

  avg_pool2d_grad: (out, [g], node, [gs]) => {
    const p = poolWindow(node.attrs);
    const xs = node.shape;
    const acc = new Float64Array(out.length);
    eachCell(xs, gs!, (o, plane, oh, ow) => {
      const share = g![o]! / (p.kh * p.kw);
      eachInWindow(plane, xs[2]!, xs[3]!, oh, ow, p, (i) => (acc[i]! += share));
    });
    storeFrom(out, acc);
  },

  adaptive_avg_pool2d: (out, [x], node, [xs]) => {
    eachBin(xs!, node.shape, (o, plane, h0, h1, w0, w1) => {
      let acc = 0;
      for (let ih = h0; ih < h1; ih++) for (let iw = w0; iw < w1; iw++) acc += x![plane + ih * xs![3]! + iw]!;
      out[o] = acc / ((h1 - h0) * (w1 - w0));
    });
  },

  adaptive_avg_pool2d_grad: (out, [g], node, [gs]) => {
    const xs = node.shape;
    const acc = new Float64Array(out.length);
    eachBin(xs, gs!, (o, plane, h0, h1, w0, w1) => {
      const share = g![o]! / ((h1 - h0) * (w1 - w0));
      for (let ih = h0; ih < h1; ih++) for (let iw = w0; iw < w1; iw++) acc[plane + ih * xs[3]! + iw]! += share;
    });
    storeFrom(out, acc);
  },
};
