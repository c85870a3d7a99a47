import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import type { Slice } from '../../../ir/program.ts';
import { partsDispatch, type AnyPart } from '../grid.ts';
import { f32, Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { rowGradStore, rowLossFn } from './ops/softmax.ts';

/** The loss (a sum over rows) and, beside it, dlogits (a thread per row) from the same logits. */
export function crossEntropyParts(sh: Shader, logits: Slice, labels: Slice, loss: Slice, dlogits: Slice | undefined, gradScale: number): AnyPart[] {
  const [N, K] = logits.shape;
  sh.helper('row_loss', rowLossFn(sh, logits, labels, K!));
  const parts: AnyPart[] = [{ count: 1, length: N!, term: 'return row_loss(r);', store: `${sh.write(loss, '0u')} = acc / ${f32(N!)};` }];
  if (dlogits) parts.push({ count: N!, length: 0, store: rowGradStore(sh, logits, labels, dlogits, K!, `${f32(gradScale)} / ${f32(N!)}`) });
  return parts;
}

/** softmax_cross_entropy: torch.nn.CrossEntropyLoss (mean) and its gradient in one dispatch. */
export function softmaxCrossEntropy(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { attrs, inputs: { logits, labels }, outputs: { loss, dlogits } } = KERNEL_KINDS.softmax_cross_entropy.read(k);
  return [partsDispatch(sh, k.name, crossEntropyParts(sh, logits, labels, loss, dlogits, attrs.gradScale))];
}
