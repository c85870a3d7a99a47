import { emitGemm } from '../gemm.ts';
import { input, output, type At, type KernelCtx } from '../kernel.ts';

/** y = x·wᵀ + b, w [out, in] as in PyTorch: dot products along `in` (gemm's dots form). */
export function linear(c: KernelCtx): void {
  linearInto(c, input(c, 0), input(c, 1), c.k.inputs.length > 2 ? input(c, 2) : undefined, output(c, 0));
}

export function linearInto(c: KernelCtx, x: At, w: At, bias: At | undefined, y: At): void {
  const [N, I] = x.shape as [number, number];
  const [O] = w.shape as [number];
  emitGemm(c, { M: N, N: O, K: I, a: x.addr, aM: I, aK: 1, b: w.addr, bK: 1, bN: I, c: y.addr, bias: bias?.addr });
}
