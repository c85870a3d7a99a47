import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { epilogueAround } from '../expr.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { layerNormGradOf } from './layer-norm.ts';

/**
 * layer_norm_backward (src/ir/kernels.ts): the row kernel on g·w, summing dw = Σ g·x̂ and db = Σ g
 * as it goes (x̂ recomputed, as the forward computed it; fixed blocks of rows, the same bits on any
 * number of threads), then its epilogue (epilogueAround).
 */
export function layerNormBackward(c: KernelCtx): void {
  const k = ats(c);
  const { attrs: { eps, dims, bias }, inputs: { g, x, w }, outputs: { dw, db, results }, expr } = KERNEL_KINDS.layer_norm_backward.read(k);
  const epilogue = expr && epilogueAround(c, x.shape, expr, results);
  layerNormGradOf(derive(c, 'layer_norm_grad', { eps, dims }, [g, x], [epilogue ? epilogue.acc : results[0]!]), w.addr, { dw: dw.addr, db: bias ? db!.addr : undefined });
  epilogue?.emit({ inputs: k.inputs });
}
