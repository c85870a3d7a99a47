import { ints, num } from '../../../ir/op.ts';
import { offsetOf, strides } from '../../../ir/shape.ts';
import type { RefKernel } from './common.ts';

export const reshapeKernels: Record<string, RefKernel> = {
  // Row-major data is unchanged by a view: copy it.
  reshape: (out, [x]) => {
    out.set(x!);
  },
  // Output axis k walks x's axis dims[k].
  permute: (out, [x], node, [xs]) => {
    const xst = strides(xs!);
    const st = ints(node.attrs, 'dims').map((d) => xst[d]!);
    for (let i = 0; i < out.length; i++) out[i] = x![offsetOf(i, node.shape, st)]!;
  },
  slice: (out, [x], node, [xs]) => {
    const st = strides(xs!);
    const base = num(node.attrs, 'start') * st[num(node.attrs, 'dim')]!;
    for (let i = 0; i < out.length; i++) out[i] = x![base + offsetOf(i, node.shape, st)]!;
  },
  pad: (out, [x], node, [xs]) => {
    const st = strides(node.shape);
    const base = num(node.attrs, 'before') * st[num(node.attrs, 'dim')]!;
    out.fill(0);
    for (let i = 0; i < x!.length; i++) out[base + offsetOf(i, xs!, st)] = x![i]!;
  },
};
