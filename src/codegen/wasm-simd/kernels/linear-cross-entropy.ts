import { input, output, type KernelCtx } from '../kernel.ts';
import { linearInto } from './linear.ts';
import { crossEntropyInto } from './softmax-cross-entropy.ts';

/** logits = x·wᵀ + b (written: a step output), then softmax_cross_entropy on them. Inputs (x, w, b if bias, labels). */
export function linearCrossEntropy(c: KernelCtx): void {
  const bias = c.k.attrs.bias === true;
  const logits = output(c, 0);
  linearInto(c, input(c, 0), input(c, 1), bias ? input(c, 2) : undefined, logits);
  crossEntropyInto(c, logits, input(c, bias ? 3 : 2), output(c, 1), c.k.attrs.grad === true ? output(c, 2) : undefined);
}
