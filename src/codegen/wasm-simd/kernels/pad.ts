import { num } from '../../../ir/op.ts';
import { strides } from '../../../ir/shape.ts';
import { onThread0, type KernelCtx } from '../kernel.ts';
import { stridedCopy } from '../strided-copy.ts';

/** Zeros, then the input copied into its place along dim: two phases, so no thread's zeros land on another's copy. */
export function pad(c: KernelCtx): void {
  const { e } = c;
  const x = c.inShape(0);
  const out = c.outShape(0);
  const st = strides(out);
  const bytes = c.k.outputs[0]!.bytes;
  c.phase((_, tid) => onThread0(e, tid, [e.m.memory.fill(e.i32(c.outAddr(0)), e.i32(0), e.i32(bytes))]));
  const dst = c.outAddr(0) + 4 * num(c.k.attrs, 'before') * st[num(c.k.attrs, 'dim')]!;
  c.phase((fn, tid) => stridedCopy(c, fn, tid, { shape: x, src: c.inAddr(0), srcStrides: strides(x), dst, dstStrides: st }));
}
