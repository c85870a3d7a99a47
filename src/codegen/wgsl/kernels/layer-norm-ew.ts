import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { epilogueStores } from '../expr.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { layerNormRowsDispatch } from './ops/layer-norm.ts';

/** layer_norm_ew: the row kernel with the epilogue computed at each element it writes. */
export function layerNormEw(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { inputs: { g, x }, outputs: { results }, expr } = KERNEL_KINDS.layer_norm_ew.read(k);
  return [layerNormRowsDispatch(sh, k.name, k.attrs, x, g, (i, v) => epilogueStores({ sh, domain: x.shape, input: (j) => k.inputs[j]!, i, acc: v }, expr, results))];
}
