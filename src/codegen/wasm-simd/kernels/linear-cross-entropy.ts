import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { ats, type KernelCtx } from '../kernel.ts';
import { linearInto } from './linear.ts';
import { crossEntropyInto } from './softmax-cross-entropy.ts';

/** logits = x·wᵀ + b (written: a step output), then softmax_cross_entropy on them. */
export function linearCrossEntropy(c: KernelCtx): void {
  const { attrs, inputs: { x, w, b, labels }, outputs: { logits, loss, dlogits } } = KERNEL_KINDS.linear_cross_entropy.read(ats(c));
  linearInto(c, x, w, b, logits);
  crossEntropyInto(c, logits, labels, loss, dlogits, attrs.gradScale);
}
