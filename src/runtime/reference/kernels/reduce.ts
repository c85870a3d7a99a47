import { ints } from '../../../ir/op.ts';
import { broadcastStrides, offsetOf } from '../../../ir/shape.ts';
import { storeFrom, type RefKernel } from './common.ts';

export const reduceKernels: Record<string, RefKernel> = {
  sum: (out, [x], node, [xs]) => {
    const axes = ints(node.attrs, 'axes');
    // keepdim only changes the shape's rank, not the layout: index through the keepdim shape.
    const kept = xs!.map((d, i) => (axes.includes(i) ? 1 : d));
    const st = broadcastStrides(kept, xs!);
    const acc = new Float64Array(out.length); // f64 accumulation, see storeFrom
    for (let i = 0; i < x!.length; i++) acc[offsetOf(i, xs!, st)]! += x![i]!;
    storeFrom(out, acc);
  },
  expand: (out, [x], node, [xs]) => {
    const st = broadcastStrides(xs!, node.shape);
    for (let i = 0; i < out.length; i++) out[i] = x![offsetOf(i, node.shape, st)]!;
  },
  // The adjoint of expand: every element of x adds into the element it was broadcast from.
  sum_to: (out, [x], node, [xs]) => {
    const st = broadcastStrides(node.shape, xs!);
    const acc = new Float64Array(out.length);
    for (let i = 0; i < x!.length; i++) acc[offsetOf(i, xs!, st)]! += x![i]!;
    storeFrom(out, acc);
  },
};
