import { num } from '../../../ir/op.ts';
import { strides } from '../../../ir/shape.ts';
import type { KernelCtx } from '../kernel.ts';
import { stridedCopy } from '../strided-copy.ts';

/** Elements start..end-1 along dim: the input read at its own strides from the slice's first element. */
export function slice(c: KernelCtx): void {
  const st = strides(c.inShape(0));
  const out = c.outShape(0);
  const src = c.inAddr(0) + 4 * num(c.k.attrs, 'start') * st[num(c.k.attrs, 'dim')]!;
  c.phase((fn, tid) => stridedCopy(c, fn, tid, { shape: out, src, srcStrides: st, dst: c.outAddr(0), dstStrides: strides(out) }));
}
