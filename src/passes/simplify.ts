import type { Graph, Node } from '../ir/graph.ts';
import { num } from '../ir/op.ts';
import { sameShape } from '../ir/shape.ts';
import { eliminateDeadCode } from './dce.ts';

/**
 * Scalar ops folded when every operand is a constant. Each operand and the result are rounded to
 * f32, as the op-by-op step stores them, so folding never changes a value.
 */
const folds: Record<string, (a: number[]) => number> = {
  add: ([a, b]) => a! + b!,
  sub: ([a, b]) => a! - b!,
  mul: ([a, b]) => a! * b!,
  div: ([a, b]) => a! / b!,
  neg: ([a]) => -a!,
  sqrt: ([a]) => Math.sqrt(a!),
  relu: ([a]) => Math.max(a!, 0),
};

/**
 * Cleans a graph without changing what it computes: folds constant arithmetic, removes identity
 * views (a reshape, expand or sum_to to the shape it already has), collapses chains of reshapes,
 * merges common subexpressions (same op, attrs and inputs; dropout masks are a function of their
 * inputs, so equal dropouts are equal), then drops what nothing reads.
 */
export function simplify(g: Graph): Graph {
  const nodes: Node[] = [];
  const remap: number[] = [];
  const seen = new Map<string, number>();
  for (const n of g.nodes) {
    const inputs = n.inputs.map((i) => remap[i]!);
    const ins = inputs.map((i) => nodes[i]!);
    const identity = (n.op === 'reshape' || n.op === 'expand' || n.op === 'sum_to') && sameShape(ins[0]!.shape, n.shape);
    if (identity) {
      remap[n.id] = inputs[0]!;
      continue;
    }
    let node: Omit<Node, 'id'> = { ...n, inputs };
    if (n.op === 'reshape' && ins[0]!.op === 'reshape') node = { ...node, inputs: ins[0]!.inputs };
    const fold = folds[n.op];
    if (fold && ins.length > 0 && ins.every((i) => i.op === 'const')) {
      const value = Math.fround(fold(ins.map((i) => Math.fround(num(i.attrs, 'value')))));
      node = { ...node, op: 'const', inputs: [], attrs: { value } };
    }
    const key = node.op === 'input' || node.op === 'param' ? undefined : `${node.op}(${node.inputs.join(',')})${JSON.stringify(node.attrs)}`;
    const prev = key === undefined ? undefined : seen.get(key);
    if (prev !== undefined) {
      remap[n.id] = prev;
      continue;
    }
    const id = nodes.length;
    nodes.push({ ...node, id });
    if (key !== undefined) seen.set(key, id);
    remap[n.id] = id;
  }
  const rec = (r: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, remap[v]!]));
  return eliminateDeadCode({
    ...g,
    nodes,
    state: g.state.map((s) => ({ ...s, node: remap[s.node]! })),
    inputs: rec(g.inputs),
    outputs: rec(g.outputs),
    updates: rec(g.updates),
    grads: rec(g.grads),
  });
}
