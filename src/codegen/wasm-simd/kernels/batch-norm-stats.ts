import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { emitExpr } from '../expr.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { batchMean } from './batch-mean.ts';
import { batchVar } from './batch-var.ts';

/**
 * batch_norm_stats (src/ir/kernels.ts): the mean, then the variance about it, as two phases of one
 * kernel (the barrier between them is the step's own). Two passes, as the op kernels make them:
 * a one-pass Σx, Σx² in f32 loses the variance of a channel whose mean is large against its
 * spread, and the second pass mostly hits cache (x is at most a few MB for these layers).
 */
export function batchNormStats(c: KernelCtx): void {
  const { inputs: { x, operands }, outputs: { mean, var: v, results }, expr } = KERNEL_KINDS.batch_norm_stats.read(ats(c));
  batchMean(derive(c, 'batch_mean', {}, [x], [mean]));
  batchVar(derive(c, 'batch_var', {}, [x, mean], [v]));
  // The running-statistics epilogue, a third phase over [C] (a few hundred elements at most).
  if (expr) emitExpr(c, mean.shape, expr, { inputs: [mean, v, ...operands] }, results);
}
