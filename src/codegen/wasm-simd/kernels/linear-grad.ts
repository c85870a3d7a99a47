import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { epilogueAround } from '../expr.ts';
import { emitGemm } from '../gemm.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { sum } from './sum.ts';

/**
 * The backward of torch.nn.Linear from g = dL/dy [N, O]: dw = gᵀ·x [O, I] (gemm rows form: 4×8
 * tiles over the batch), db = Σ_n g (column sums in f64, summed by the gemm as it packs gᵀ when it
 * packs), dx = g·w [N, I] (rows form, K = O), then the optional epilogue on dx.
 */
export function linearGrad(c: KernelCtx): void {
  const k = ats(c);
  const { inputs: { g, x, w }, outputs: { dw, db, results }, expr } = KERNEL_KINDS.linear_grad.read(k);
  const [N, O] = g.shape as [number, number];
  const [, I] = x.shape as [number, number];
  const summed = emitGemm(c, { M: O, N: I, K: N, a: g.addr, aM: 1, aK: O, b: x.addr, bK: I, bN: 1, c: dw.addr, rowSums: db?.addr });
  if (db && !summed) sum(derive(c, 'sum', { axes: [0], keepdim: false }, [g], [db]));
  if (!w) return;
  const epilogue = expr && epilogueAround(c, [N, I], expr, results);
  const dx = epilogue ? epilogue.acc : results[0]!;
  emitGemm(c, { M: N, N: I, K: O, a: g.addr, aM: O, aK: 1, b: w.addr, bK: I, bN: 1, c: dx.addr });
  epilogue?.emit({ inputs: k.inputs });
}
