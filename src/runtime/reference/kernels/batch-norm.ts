import type { Node } from '../../../ir/graph.ts';
import { num } from '../../../ir/op.ts';
import type { Shape } from '../../../ir/shape.ts';
import type { Arr, RefKernel } from './common.ts';
import { elementwiseKernel } from './elementwise.ts';

// Channels are axis 1 of [N, C] or [N, C, H, W]. Per-channel sums run over N·H·W elements (over
// 10^4 for a real batch) and accumulate in a JS number (f64) before the one rounding on store,
// which makes these statistics more exact than any f32 backend's.

/** Channel of flat element i of x. */
function channelOf(xs: Shape): (i: number) => number {
  const C = xs[1]!;
  const inner = xs.length === 4 ? xs[2]! * xs[3]! : 1;
  return (i) => Math.floor(i / inner) % C;
}

/** Per-channel Σ f(i, c) over the elements of x, in f64. */
function perChannelSum(xs: Shape, n: number, f: (i: number, c: number) => number): Float64Array {
  const ch = channelOf(xs);
  const acc = new Float64Array(xs[1]!);
  for (let i = 0; i < n; i++) {
    const c = ch(i);
    acc[c]! += f(i, c);
  }
  return acc;
}

function countPerChannel(xs: Shape, n: number): number {
  return n / xs[1]!;
}

function invStd(v: Arr, c: number, node: Node): number {
  return 1 / Math.sqrt(v[c]! + num(node.attrs, 'eps'));
}

export const batchNormKernels: Record<string, RefKernel> = {
  batch_mean: (out, [x], _, [xs]) => {
    const count = countPerChannel(xs!, x!.length);
    const s = perChannelSum(xs!, x!.length, (i) => x![i]!);
    for (let c = 0; c < out.length; c++) out[c] = s[c]! / count;
  },

  // Biased (divides by the count), as PyTorch's training forward uses; `mean` is batch_mean(x).
  batch_var: (out, [x, mean], _, [xs]) => {
    const count = countPerChannel(xs!, x!.length);
    const s = perChannelSum(xs!, x!.length, (i, c) => (x![i]! - mean![c]!) ** 2);
    for (let c = 0; c < out.length; c++) out[c] = s[c]! / count;
  },

  // Partials with the other inputs held fixed (the chain through batch_mean/batch_var is
  // autodiff's job), r = 1/sqrt(var + eps):
  //   x: g·γ·r   mean: -Σ g·γ·r   var: -½ Σ g·γ·(x-μ)·r³   gamma: Σ g·(x-μ)·r
  batch_norm_grad: (out, ins, node, shapes, ctx) => {
    const [g, x, mean, v, gamma] = ins;
    const xs = shapes[1];
    const wrt = node.attrs.wrt;
    const n = x!.length;
    if (wrt === 'x') return elementwiseKernel(out, ins, node, shapes, ctx);
    let s: Float64Array;
    if (wrt === 'mean') s = perChannelSum(xs!, n, (i, c) => -g![i]! * gamma![c]! * invStd(v!, c, node));
    else if (wrt === 'var') s = perChannelSum(xs!, n, (i, c) => -0.5 * g![i]! * gamma![c]! * (x![i]! - mean![c]!) * invStd(v!, c, node) ** 3);
    else if (wrt === 'gamma') s = perChannelSum(xs!, n, (i, c) => g![i]! * (x![i]! - mean![c]!) * invStd(v!, c, node));
    else throw new Error(`batch_norm_grad: unknown wrt ${String(wrt)}`);
    out.set(s);
  },
};
