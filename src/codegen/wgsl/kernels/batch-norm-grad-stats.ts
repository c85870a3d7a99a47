import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { gradPart } from './ops/batch-norm.ts';

/** batch_norm_grad_stats: every per-channel partial as an independent part of one dispatch. */
export function batchNormGradStats(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs: a, inputs: { g, x, mean, var: v, gamma }, outputs } = KERNEL_KINDS.batch_norm_grad_stats.read(k);
  const sh = new Shader(ctx);
  const ins = [g, x, mean, v, gamma];
  const wanted = [['gamma', outputs.dgamma], ['beta', outputs.dbeta], ['mean', outputs.dmean], ['var', outputs.dvar]] as const;
  const parts = wanted.flatMap(([wrt, out]) => (out ? [gradPart(sh, wrt, a.eps, ins, out)] : []));
  return [partsDispatch(sh, k.name, parts)];
}
