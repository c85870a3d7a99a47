import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { partsDispatch } from '../grid.ts';
import { elementwise } from './elementwise.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { gradPart } from './ops/batch-norm.ts';

/** batch_norm_grad_stats: every per-channel partial as an independent part of one dispatch. */
export function batchNormGradStats(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs: a, inputs: { g, x, mean, var: v, gamma }, outputs, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(k);
  const sh = new Shader(ctx);
  const ins = [g, x, mean, v, gamma];
  const wanted = [['gamma', outputs.dgamma], ['beta', outputs.dbeta], ['mean', outputs.dmean], ['var', outputs.dvar]] as const;
  const parts = wanted.flatMap(([wrt, out]) => (out ? [gradPart(sh, wrt, a.eps, ins, out)] : []));
  const first = partsDispatch(sh, k.name, parts);
  if (!expr) return [first];
  // The epilogue reads the partials every channel's workgroup wrote: a second dispatch, an
  // elementwise kernel over x's domain.
  const partials = [outputs.dgamma, outputs.dbeta, outputs.dmean, outputs.dvar].filter((o) => o !== undefined);
  const ew = { ...k, name: `${k.name}.dx`, kind: 'elementwise', attrs: {}, inputs: [...k.inputs, ...partials], outputs: outputs.results, expr };
  return [first, ...elementwise({ ...ctx, kernel: ew })];
}
