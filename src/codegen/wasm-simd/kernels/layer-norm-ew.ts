import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { epilogueAround } from '../expr.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { layerNorm, layerNormGrad } from './layer-norm.ts';

/** layer_norm_ew (src/ir/kernels.ts): the row kernel, then its epilogue as a second phase over the rows it wrote. */
export function layerNormEw(c: KernelCtx): void {
  const k = ats(c);
  const { attrs: { eps, dims, grad }, inputs: { g, x }, outputs: { results }, expr } = KERNEL_KINDS.layer_norm_ew.read(k);
  const { acc, emit } = epilogueAround(c, x.shape, expr, results);
  if (grad) layerNormGrad(derive(c, 'layer_norm_grad', { eps, dims }, [g!, x], [acc]));
  else layerNorm(derive(c, 'layer_norm', { eps, dims }, [x], [acc]));
  emit({ inputs: k.inputs });
}
