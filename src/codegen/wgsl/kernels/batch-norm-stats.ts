import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { meanPart, varPart } from './ops/batch-norm.ts';

/** batch_norm_stats: the mean, then (a second dispatch, which reads it) the variance about it. */
export function batchNormStats(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { inputs: { x }, outputs: { mean, var: v } } = KERNEL_KINDS.batch_norm_stats.read(k);
  const first = new Shader(ctx);
  const second = new Shader(ctx);
  return [partsDispatch(first, `${k.name}.mean`, [meanPart(first, x, mean)]), partsDispatch(second, `${k.name}.var`, [varPart(second, x, mean, v)])];
}
