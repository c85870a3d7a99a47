import { emitGemm } from '../gemm.ts';
import type { KernelCtx } from '../kernel.ts';

/** y = x·wᵀ + b, w [out, in] as in PyTorch: dot products along `in` (gemm's dots form). */
export function linear(c: KernelCtx): void {
  const [N, I] = c.inShape(0) as [number, number];
  const [O] = c.inShape(1) as [number];
  emitGemm(c, { M: N, N: O, K: I, a: c.inAddr(0), aM: I, aK: 1, b: c.inAddr(1), bK: 1, bN: I, c: c.outAddr(0), bias: c.k.inputs.length > 2 ? c.inAddr(2) : undefined });
}
