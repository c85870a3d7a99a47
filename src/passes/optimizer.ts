import type { GraphBuilder } from '../ir/builder.ts';
import type { StateTensor } from '../ir/graph.ts';
import type { ResolvedOptimizer } from '../frontend/training-options.ts';

/**
 * Lowers the optimizer step into graph ops, in torch.optim's order (PyTorch 1.13 single-tensor
 * path), one parameter at a time. Returns the new value of every parameter and optimizer-state
 * tensor it touches, by name. State tensors take PyTorch's names: `<param>.momentum_buffer`,
 * `<param>.exp_avg`, `<param>.exp_avg_sq`.
 */
export function lowerOptimizer(
  b: GraphBuilder,
  params: readonly StateTensor[],
  grads: ReadonlyMap<number, number>,
  opt: ResolvedOptimizer,
  step: number,
): { updates: Record<string, number>; inputs: Record<string, number> } {
  const updates: Record<string, number> = {};
  const inputs: Record<string, number> = {};
  const scalar = (name: string) => (inputs[name] ??= b.op('input', [], { name, shape: [] }));
  const cycled = opt.type === 'sgd' && opt.schedule?.kind === 'onecycle' && opt.schedule.cycleMomentum;
  const lr = opt.schedule ? scalar('lr') : undefined;
  const momentum = cycled ? scalar('momentum') : undefined;
  // x·m + y with the cycled momentum m: torch's buf.mul_(m).add_(g) and g.add(buf, alpha=m).
  const plusMomentumTimes = (x: number, y: number) => b.op('add', [b.op('mul', [x, momentum!]), y]);
  const axpby = (x: number, y: number, alpha: number, beta: number) => b.op('axpby', [x, y], { alpha, beta });
  const slot = (p: StateTensor, name: string) => b.addState({ name: `${p.name}.${name}`, shape: p.shape, kind: 'optim', init: { kind: 'constant', value: 0 } });
  const [phase, scope, loc] = [b.phase, b.scope, b.loc];
  b.phase = 'update';
  for (const p of params) {
    // torch.optim skips parameters that received no gradient.
    const g0 = grads.get(p.node);
    if (g0 === undefined) continue;
    b.scope = p.name;
    b.loc = b.node(g0).loc;
    // L2 weight decay (SGD, Adam) adds wd·p to the gradient; AdamW decays the weights instead.
    const l2 = opt.weightDecay !== 0 && opt.type !== 'adamw';
    const g = l2 ? b.op('add', [g0, b.op('mul', [p.node, b.constant(opt.weightDecay)])]) : g0;
    if (opt.type === 'sgd') {
      let d = g;
      if (opt.momentum !== 0 || momentum !== undefined) {
        // buf = momentum·buf + g; on the first step torch sets buf = g, which this equals with buf = 0.
        const buf = slot(p, 'momentum_buffer');
        const next = momentum === undefined ? axpby(buf, g, opt.momentum, 1) : plusMomentumTimes(buf, g);
        updates[`${p.name}.momentum_buffer`] = next;
        d = opt.nesterov ? (momentum === undefined ? axpby(g, next, 1, opt.momentum) : plusMomentumTimes(next, g)) : next;
      }
      updates[p.name] = lr === undefined ? axpby(p.node, d, 1, -opt.lr) : b.op('sub', [p.node, b.op('mul', [d, lr])]);
    } else {
      const [beta1, beta2] = opt.betas;
      const m = axpby(slot(p, 'exp_avg'), g, beta1, 1 - beta1);
      const v = axpby(slot(p, 'exp_avg_sq'), b.op('mul', [g, g]), beta2, 1 - beta2);
      updates[`${p.name}.exp_avg`] = m;
      updates[`${p.name}.exp_avg_sq`] = v;
      // AdamW: p·(1 - lr·wd), whose factor PyTorch computes in Python floats.
      const factor = opt.type === 'adamw' && opt.weightDecay !== 0 ? (lr === undefined ? b.constant(1 - opt.lr * opt.weightDecay) : b.op('sub', [b.constant(1), b.op('mul', [lr, b.constant(opt.weightDecay)])])) : undefined;
      const decayed = factor === undefined ? p.node : b.op('mul', [p.node, factor]);
      updates[p.name] = lr === undefined ? b.op('adam_step', [decayed, m, v, step], { lr: opt.lr, beta1, beta2, eps: opt.eps }) : b.op('adam_step_lr', [decayed, m, v, step, lr], { beta1, beta2, eps: opt.eps });
    }
  }
  [b.phase, b.scope, b.loc] = [phase, scope, loc];
  return { updates, inputs };
}
