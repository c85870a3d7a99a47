import type { Attrs } from '../graph.ts';
import { defineElementwise, P, type V } from '../elementwise.ts';
import { num } from '../op.ts';
import { fmtShape, numel, sameShape, type Shape } from '../shape.ts';

/**
 * The one optimizer step that does not decompose into axpby: Adam's bias-corrected update,
 * in torch.optim.Adam's order (PyTorch 1.13, single-tensor path):
 *   t = step + 1; denom = sqrt(v)/sqrt(1 - β2^t) + eps; p -= lr/(1 - β1^t) · m/denom
 * with m and v already updated for this step. Weight decay is composed around it. The step
 * size and sqrt(1 - β2^t) are Python floats in PyTorch: here uniform f64 steps (src/ir/expr.ts).
 */
function adamShape(name: string, attrs: readonly string[]) {
  return ([p, m, v, step, lr]: readonly Shape[], a: Attrs): Shape => {
    for (const k of attrs) num(a, k);
    if (!sameShape(p!, m!) || !sameShape(p!, v!)) throw new Error(`${name}: ${fmtShape(p!)}, ${fmtShape(m!)}, ${fmtShape(v!)}`);
    if (numel(step!) !== 1 || (lr && numel(lr) !== 1)) throw new Error(`${name}: step${lr ? ' and lr' : ''} must be scalars`);
    return p!;
  };
}

function adamUpdate(p: V, m: V, v: V, step: V, lr: V | number, a: Attrs): V {
  const stepSize = P.div(lr, P.pow1m(step, num(a, 'beta1')));
  const bc2 = P.sqrt(P.pow1m(step, num(a, 'beta2')));
  return P.sub(p, P.mul(stepSize, P.div(m, P.add(P.div(P.sqrt(v), bc2), num(a, 'eps')))));
}

export const adamStep = defineElementwise({
  name: 'adam_step',
  doc: 'p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps), t = step + 1',
  arity: 4,
  shape: adamShape('adam_step', ['lr', 'beta1', 'beta2', 'eps']),
  template: ([p, m, v, step], a) => adamUpdate(p!, m!, v!, step!, num(a, 'lr'), a),
});

/**
 * adam_step under a learning-rate schedule: lr is a per-step input, an f32 value, so the step
 * size lr/(1-β1^t) is an f32 quotient where PyTorch divides Python floats (an ulp apart at most).
 */
export const adamStepLr = defineElementwise({
  name: 'adam_step_lr',
  doc: 'adam_step with lr the fifth operand (a scheduled learning rate)',
  arity: 5,
  shape: adamShape('adam_step_lr', ['beta1', 'beta2', 'eps']),
  template: ([p, m, v, step, lr], a) => adamUpdate(p!, m!, v!, step!, lr!, a),
});
