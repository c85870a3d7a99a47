import { defineElementwise, P } from '../elementwise.ts';
import { num } from '../op.ts';
import { fmtShape, numel, sameShape } from '../shape.ts';

/**
 * The one optimizer step that does not decompose into axpby: Adam's bias-corrected update,
 * in torch.optim.Adam's order (PyTorch 1.13, single-tensor path):
 *   t = step + 1; denom = sqrt(v)/sqrt(1 - β2^t) + eps; p -= lr/(1 - β1^t) · m/denom
 * with m and v already updated for this step. Weight decay is composed around it. The step
 * size and sqrt(1 - β2^t) are Python floats in PyTorch: here uniform f64 steps (src/ir/expr.ts).
 */
export const adamStep = defineElementwise({
  name: 'adam_step',
  doc: 'p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps), t = step + 1',
  arity: 4,
  shape: ([p, m, v, step], a) => {
    for (const k of ['lr', 'beta1', 'beta2', 'eps']) num(a, k);
    if (!sameShape(p!, m!) || !sameShape(p!, v!)) throw new Error(`adam_step: ${fmtShape(p!)}, ${fmtShape(m!)}, ${fmtShape(v!)}`);
    if (numel(step!) !== 1) throw new Error('adam_step: step must be a scalar');
    return p!;
  },
  template: ([p, m, v, step], a) => {
    const stepSize = P.div(num(a, 'lr'), P.pow1m(step!, num(a, 'beta1')));
    const bc2 = P.sqrt(P.pow1m(step!, num(a, 'beta2')));
    return P.sub(p!, P.mul(stepSize, P.div(m!, P.add(P.div(P.sqrt(v!), bc2), num(a, 'eps')))));
  },
});
