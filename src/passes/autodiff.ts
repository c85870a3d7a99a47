import type { GraphBuilder } from '../ir/builder.ts';
import { KilnError } from '../ir/errors.ts';
import { getOp } from '../ir/op.ts';

/**
 * Reverse-mode differentiation of the scalar `loss` with respect to the nodes `wrt`, appending
 * the gradient nodes to `b`. Each op's rule comes from the op table; gradients reaching a node
 * along several paths are summed. Only nodes between `wrt` and `loss` are differentiated.
 * Returns node -> gradient node for every node in `wrt` that the loss depends on.
 */
export function differentiate(b: GraphBuilder, loss: number, wrt: readonly number[]): Map<number, number> {
  const targets = new Set(wrt);
  const needs = new Array<boolean>(loss + 1).fill(false);
  for (let id = 0; id <= loss; id++) {
    needs[id] = targets.has(id) || b.node(id).inputs.some((i) => needs[i]);
  }

  const [phase, loc, scope] = [b.phase, b.loc, b.scope];
  b.phase = 'backward';
  const grads = new Map<number, number>();
  const accumulate = (id: number, g: number) => {
    const prev = grads.get(id);
    grads.set(id, prev === undefined ? g : b.op('add', [prev, g]));
  };
  try {
    b.loc = b.node(loss).loc;
    accumulate(loss, b.constant(1));
    for (let id = loss; id >= 0; id--) {
      const g = grads.get(id);
      const node = b.node(id);
      if (g === undefined || targets.has(id) || !node.inputs.some((i) => needs[i])) continue;
      const def = getOp(node.op);
      if (!def.grad) throw new KilnError('autodiff', `cannot differentiate through ${node.op}`, node.loc);
      b.loc = node.loc;
      b.scope = node.scope;
      const inputGrads = def.grad(b, node, g);
      node.inputs.forEach((input, k) => {
        const gi = inputGrads[k];
        if (gi !== undefined && needs[input]) accumulate(input, gi);
      });
    }
  } finally {
    [b.phase, b.loc, b.scope] = [phase, loc, scope];
  }
  return new Map(wrt.flatMap((id) => (grads.has(id) ? [[id, grads.get(id)!] as const] : [])));
}
