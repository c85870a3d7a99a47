import { num } from '../../../ir/op.ts';
import type { RefKernel } from './common.ts';

export const optimizerKernels: Record<string, RefKernel> = {
  // torch.optim.Adam (1.13, single-tensor path), with m and v already updated for this step:
  //   t = step + 1; denom = sqrt(v)/sqrt(1 - β2^t) + eps; p -= lr/(1 - β1^t) · m/denom
  // Evaluated in f64 and rounded once on store; PyTorch rounds each tensor op to f32, so f32
  // results may differ from it in the last bit or so.
  adam_step: (out, [p, m, v, stepIn], node) => {
    const lr = num(node.attrs, 'lr');
    const beta1 = num(node.attrs, 'beta1');
    const beta2 = num(node.attrs, 'beta2');
    const eps = num(node.attrs, 'eps');
    const t = stepIn![0]! + 1;
    const stepSize = lr / (1 - beta1 ** t);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    for (let i = 0; i < out.length; i++) {
      const denom = Math.sqrt(v![i]!) / bc2Sqrt + eps;
      out[i] = p![i]! - stepSize * (m![i]! / denom); // addcdiv_(m, denom, value=-stepSize)
    }
  },
};
