import { ints } from '../../../ir/op.ts';
import { strides } from '../../../ir/shape.ts';
import type { KernelCtx } from '../kernel.ts';
import { stridedCopy } from '../strided-copy.ts';

/** Output axis k walks the input's axis dims[k]: a strided copy (strided-copy.ts). */
export function permute(c: KernelCtx): void {
  const xst = strides(c.inShape(0));
  const out = c.outShape(0);
  const srcStrides = ints(c.k.attrs, 'dims').map((d) => xst[d]!);
  c.phase((fn, tid) => stridedCopy(c, fn, tid, { shape: out, src: c.inAddr(0), srcStrides, dst: c.outAddr(0), dstStrides: strides(out) }));
}
