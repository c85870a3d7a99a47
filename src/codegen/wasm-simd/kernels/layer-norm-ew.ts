import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { numel } from '../../../ir/shape.ts';
import { emitExpr } from '../expr.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { layerNorm, layerNormGrad } from './layer-norm.ts';

/**
 * layer_norm_ew (src/ir/kernels.ts): the row kernel, then its epilogue as a second phase over the
 * rows it wrote. When the epilogue's first output is acc itself (x̂, which the backward reads), the
 * row kernel writes it in place and the epilogue computes only the others; else acc goes to scratch.
 */
export function layerNormEw(c: KernelCtx): void {
  const k = ats(c);
  const { attrs: { eps, dims, grad }, inputs: { g, x }, outputs: { results }, expr } = KERNEL_KINDS.layer_norm_ew.read(k);
  const direct = expr.steps[expr.outputs[0]!]!.prim === 'acc';
  const acc = direct ? results[0]! : { addr: c.sharedScratch(4 * numel(x.shape)), shape: x.shape };
  if (grad) layerNormGrad(derive(c, 'layer_norm_grad', { eps, dims }, [g!, x], [acc]));
  else layerNorm(derive(c, 'layer_norm', { eps, dims }, [x], [acc]));
  const rest = direct ? 1 : 0;
  if (expr.outputs.length > rest) emitExpr(c, x.shape, { ...expr, outputs: expr.outputs.slice(rest) }, { inputs: k.inputs, acc }, results.slice(rest));
}
