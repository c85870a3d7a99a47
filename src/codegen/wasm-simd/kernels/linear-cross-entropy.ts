import { KERNEL_KINDS, splitLinearCrossEntropy } from '../../../ir/kernels.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { linearGrad } from './linear-grad.ts';
import { linearInto } from './linear.ts';
import { crossEntropyInto } from './softmax-cross-entropy.ts';

/**
 * logits = x·wᵀ + b (written: a step output), then softmax_cross_entropy on them; with backward,
 * then the layer's linear_grad from dlogits, as its own kernel would run it.
 */
export function linearCrossEntropy(c: KernelCtx): void {
  const k = ats(c);
  const { attrs, inputs: { x, w, b, labels }, outputs: { logits, loss, dlogits } } = KERNEL_KINDS.linear_cross_entropy.read(k);
  linearInto(c, x, w, b, logits);
  crossEntropyInto(c, logits, labels, loss, dlogits, attrs.gradScale);
  if (!attrs.backward) return;
  const { backward: g } = splitLinearCrossEntropy(k, (o) => o);
  linearGrad(derive(c, g.kind, g.attrs, g.inputs, g.outputs, g.expr));
}
