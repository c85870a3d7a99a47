import { elementwiseOf, opExpr } from '../ir/elementwise.ts';
import { evalExpr } from '../ir/eval-expr.ts';
import type { Graph } from '../ir/graph.ts';
import { num } from '../ir/op.ts';
import { numel } from '../ir/shape.ts';

/**
 * The value of a node that depends on no input or parameter: a literal, or elementwise ops (iota,
 * comparisons, where, ...) and views and slices of such values, evaluated with their templates as
 * the reference backend evaluates them. Undefined for anything else. What a pass reads to
 * recognise a constant tensor by its values (a causal mask, however the model wrote it).
 */
export function constantValue(g: Pick<Graph, 'nodes'>, id: number, memo = new Map<number, Float32Array | undefined>()): Float32Array | undefined {
  if (memo.has(id)) return memo.get(id);
  const n = g.nodes[id]!;
  let value: Float32Array | undefined;
  if (n.op === 'const') value = Float32Array.of(num(n.attrs, 'value'));
  else if (n.op === 'reshape') value = constantValue(g, n.inputs[0]!, memo);
  else if (n.op === 'slice') {
    const x = constantValue(g, n.inputs[0]!, memo);
    if (x) {
      // Rows of `inner` elements, `size` of them per outer index, of which [start, end) are kept.
      const shape = g.nodes[n.inputs[0]!]!.shape;
      const d = (num(n.attrs, 'dim') + shape.length) % shape.length;
      const [start, end] = [num(n.attrs, 'start'), num(n.attrs, 'end')];
      const inner = numel(shape.slice(d + 1));
      const size = shape[d]!;
      value = new Float32Array(numel(n.shape));
      for (let o = 0, k = 0; o < numel(shape.slice(0, d)); o++) for (let r = start; r < end; r++, k++) value.set(x.subarray((o * size + r) * inner, (o * size + r + 1) * inner), k * inner);
    }
  }
  else if (elementwiseOf(n.op, n.attrs)) {
    const operands = n.inputs.map((i) => constantValue(g, i, memo));
    if (operands.every((o) => o !== undefined)) {
      const expr = opExpr(n.op, n.attrs, n.inputs.map((i) => g.nodes[i]!.shape), n.shape);
      value = new Float32Array(numel(n.shape));
      evalExpr(expr, { domain: n.shape, operands: operands.map((data, k) => ({ data: data!, shape: g.nodes[n.inputs[k]!]!.shape })), seed: 0 }, [value], true);
    }
  }
  memo.set(id, value);
  return value;
}
