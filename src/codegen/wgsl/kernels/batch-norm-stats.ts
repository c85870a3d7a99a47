import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { exprCode } from '../expr.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { meanPart, varPart } from './ops/batch-norm.ts';

/** batch_norm_stats: the mean, then (a second dispatch, which reads it) the variance about it. */
export function batchNormStats(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { inputs: { x, operands }, outputs: { mean, var: v, results }, expr } = KERNEL_KINDS.batch_norm_stats.read(k);
  const first = new Shader(ctx);
  const second = new Shader(ctx);
  let part = varPart(second, x, mean, v);
  if (expr) {
    // The running-statistics epilogue, by the thread that stores var[c], after it: it reads var[c]
    // back (its own write) and mean[c] (the first dispatch's).
    const ins = [mean, v, ...operands];
    const { lines, outputs } = exprCode({ sh: second, domain: mean.shape, input: (j) => ins[j]!, i: 'o', prefix: 'e' }, expr);
    part = { ...part, store: [part.store, ...lines, ...outputs.map((e, j) => `${second.write(results[j]!, 'o')} = ${e};`)].join('\n') };
  }
  return [partsDispatch(first, `${k.name}.mean`, [meanPart(first, x, mean)]), partsDispatch(second, `${k.name}.var`, [part])];
}
