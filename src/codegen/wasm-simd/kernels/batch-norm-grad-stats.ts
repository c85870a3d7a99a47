import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { emitExpr } from '../expr.ts';
import { ats, derive, type At, type KernelCtx } from '../kernel.ts';
import { batchNormGrad } from './batch-norm-grad.ts';
import { sum } from './sum.ts';

/**
 * batch_norm_grad_stats (src/ir/kernels.ts): each per-channel partial as one phase of one kernel,
 * with the op kernels' own reductions, so every backend sums exactly as the unfused graph did.
 */
export function batchNormGradStats(c: KernelCtx): void {
  const { attrs: a, inputs: { g, x, mean, var: v, gamma, operands }, outputs, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(ats(c));
  const ins = [g, x, mean, v, gamma];
  const partial = (wrt: string, out: At | undefined) => out && batchNormGrad(derive(c, 'batch_norm_grad', { eps: a.eps, wrt }, ins, [out]));
  partial('gamma', outputs.dgamma);
  if (outputs.dbeta) sum(derive(c, 'sum', { axes: x.shape.length === 4 ? [0, 2, 3] : [0], keepdim: false }, [g], [outputs.dbeta]));
  partial('mean', outputs.dmean);
  partial('var', outputs.dvar);
  // The epilogue (the input gradient from the partials): one more phase over x's domain.
  if (expr) {
    const partials = [outputs.dgamma, outputs.dbeta, outputs.dmean, outputs.dvar].filter((o): o is At => o !== undefined);
    emitExpr(c, x.shape, expr, { inputs: [...ins, ...operands, ...partials] }, outputs.results);
  }
}
