import { flag } from '../../../ir/op.ts';
import { emitGemm } from '../gemm.ts';
import type { KernelCtx } from '../kernel.ts';

/** op(a)·op(b), op = transpose when transA / transB; the form follows the transposes (see gemm.ts). */
export function matmul(c: KernelCtx): void {
  const ta = flag(c.k.attrs, 'transA');
  const tb = flag(c.k.attrs, 'transB');
  const [M, N] = c.outShape(0) as [number, number];
  const as = c.inShape(0);
  const K = ta ? as[0]! : as[1]!;
  emitGemm(c, {
    M,
    N,
    K,
    a: c.inAddr(0),
    aM: ta ? 1 : K,
    aK: ta ? M : 1,
    b: c.inAddr(1),
    bK: tb ? 1 : N,
    bN: tb ? K : 1,
    c: c.outAddr(0),
  });
}
