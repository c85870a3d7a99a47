import { KERNEL_KINDS, statsEpilogue } from '../../../ir/kernels.ts';
import { exprBody } from '../expr.ts';
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
  const { attrs: a, inputs: { x, operands }, outputs: { mean, var: v, results }, expr } = KERNEL_KINDS.batch_norm_stats.read(ats(c));
  batchMean(derive(c, 'batch_mean', {}, [x], [mean]));
  batchVar(derive(c, 'batch_var', {}, [x, mean], [v]));
  if (!expr) return;
  // The epilogue, one third phase: the running-statistics update over [C] (a few hundred elements
  // at most, on the second thread where there is one) beside the normalization over x's domain.
  // The two are independent: the [C] part writes in place only what the x part does not read
  // (inPlaceAllowed).
  const { channel, wide } = statsEpilogue(a, expr);
  const src = { inputs: [mean, v, ...operands] };
  const narrow = channel.outputs.length;
  c.phase((fn, tid) => [
    ...(narrow ? exprBody(c, fn, tid, mean.shape, channel, src, results.slice(0, narrow), 1) : []),
    ...(wide.outputs.length ? exprBody(c, fn, tid, x.shape, wide, src, results.slice(narrow)) : []),
  ]);
}
