import { emitExpr } from '../expr.ts';
import { emitGemm } from '../gemm.ts';
import { derive, input, output, type KernelCtx } from '../kernel.ts';
import { sum } from './sum.ts';

/**
 * The backward of torch.nn.Linear from g = dL/dy [N, O]: dw = gᵀ·x [O, I] (gemm rows form: 4×8
 * tiles over the batch), db = Σ_n g (column sums in f64), dx = g·w [N, I] (rows form, K = O),
 * then the optional epilogue on dx. Inputs (g, x, w if dx, epilogue operands).
 */
export function linearGrad(c: KernelCtx): void {
  const a = c.k.attrs;
  const g = input(c, 0);
  const x = input(c, 1);
  const [N, O] = g.shape as [number, number];
  const [, I] = x.shape as [number, number];
  let o = 0;
  const dw = output(c, o++);
  emitGemm(c, { M: O, N: I, K: N, a: g.addr, aM: 1, aK: O, b: x.addr, bK: I, bN: 1, c: dw.addr });
  if (a.bias === true) sum(derive(c, 'sum', { axes: [0], keepdim: false }, [g], [output(c, o++)]));
  if (a.dx !== true) return;
  const w = input(c, 2);
  const dx = c.k.expr ? { addr: c.sharedScratch(4 * N * I), shape: [N, I] } : output(c, o++);
  emitGemm(c, { M: N, N: I, K: O, a: g.addr, aM: O, aK: 1, b: w.addr, bK: I, bN: 1, c: dx.addr });
  if (!c.k.expr) return;
  const outs = c.k.outputs.slice(o).map((_, i) => output(c, o + i));
  emitExpr(c, dx.shape, c.k.expr, { inputs: c.k.inputs.map((_, i) => input(c, i)), acc: dx }, outs);
}
