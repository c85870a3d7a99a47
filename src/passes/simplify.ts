import { valueKey } from '../ir/value-key.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ints, num } from '../ir/op.ts';
import { elementwiseOf, opExpr } from '../ir/elementwise.ts';
import { numel, sameShape } from '../ir/shape.ts';
import { evalExpr } from '../ir/eval-expr.ts';
import { eliminateDeadCode } from './dce.ts';
import { constantValue } from './constant-value.ts';

/**
 * An elementwise op on constants, evaluated by the reference interpreter of its template with
 * f32 rounding, as the op-by-op step computes it: folding never changes a value.
 */
function fold(n: Node, ins: readonly Node[]): number | undefined {
  if (!elementwiseOf(n.op, n.attrs) || n.op === 'dropout' || n.op === 'adam_step') return undefined;
  const out = new Float32Array(1);
  const operands = ins.map((i) => ({ data: Float32Array.of(num(i.attrs, 'value')), shape: [] }));
  evalExpr(opExpr(n.op, n.attrs, ins.map(() => []), []), { domain: [], operands, seed: 0 }, [out], true);
  return out[0]!;
}

const keyOf = (n: Omit<Node, 'id'>): string => `${n.op}(${n.inputs.join(',')})${valueKey(n.attrs)}`;

/**
 * A matmul operand that is a permute P of x equals P' of x with its last two axes swapped, P'
 * being P with its last two entries exchanged: the matmul reads x itself (P' the identity) or
 * an existing permute P' of x that keeps x's last axis (a copy of contiguous runs, where P moves
 * it: a tiled transposing copy), with its trans flag flipped, and P's copy goes.
 * (Permute chains are composed first, so k.transpose(1, 2).transpose(-2, -1) is one permute.)
 */
function foldTransposes(n: Omit<Node, 'id'>, ins: readonly Node[], existing: (key: string) => number | undefined): Pick<Node, 'inputs' | 'attrs'> {
  const inputs = [...n.inputs];
  const attrs = { ...n.attrs };
  (['transA', 'transB'] as const).forEach((flag, k) => {
    if (ins[k]!.op !== 'permute') return;
    const d = ints(ins[k]!.attrs, 'dims');
    const swapped = [...d.slice(0, -2), d.at(-1)!, d.at(-2)!];
    const x = ins[k]!.inputs[0]!;
    const last = d.length - 1;
    if (d[last] === last) return;
    const via = swapped.every((a, i) => a === i) ? x : swapped[last] !== last ? undefined : existing(keyOf({ ...ins[k]!, inputs: [x], attrs: { dims: swapped } }));
    if (via === undefined) return;
    inputs[k] = via;
    attrs[flag] = attrs[flag] !== true;
  });
  return { inputs, attrs };
}

/** Which operand of where(c, a, b) a constant c picks everywhere: 1 (a) when all true, 2 (b) when all false. */
function constantChoice(c: Float32Array | undefined): 1 | 2 | undefined {
  if (!c || c.length === 0) return undefined;
  if (c.every((v) => v === 0)) return 2;
  if (c.every((v) => v !== 0)) return 1;
  return undefined;
}

/**
 * Cleans a graph without changing what it computes: folds constant arithmetic, removes identity
 * views (a reshape, expand or sum_to to the shape it already has), collapses chains of reshapes
 * and of permutes, reads a transposed matmul operand through the trans flags instead of a copy,
 * merges common subexpressions (same op, attrs and inputs; dropout masks are a function of their
 * inputs, so equal dropouts are equal), then drops what nothing reads.
 */
export function simplify(g: Graph): Graph {
  const nodes: Node[] = [];
  const constants = new Map<number, Float32Array | undefined>();
  const remap: number[] = [];
  const seen = new Map<string, number>();
  /** A node made here, merged with an equal one. */
  const emit = (node: Omit<Node, 'id'>): number => {
    const key = keyOf(node);
    const prev = seen.get(key);
    if (prev !== undefined) return prev;
    nodes.push({ ...node, id: nodes.length });
    seen.set(key, nodes.length - 1);
    return nodes.length - 1;
  };
  /** Value `id` viewed in `shape` (through no reshape, or one). */
  const view = (id: number, shape: readonly number[], like: Node): number => {
    const base = nodes[id]!.op === 'reshape' ? nodes[id]!.inputs[0]! : id;
    return sameShape(nodes[base]!.shape, shape) ? base : emit({ ...like, op: 'reshape', inputs: [base], attrs: { shape: [...shape] }, shape: [...shape] });
  };
  for (const n of g.nodes) {
    const inputs = n.inputs.map((i) => remap[i]!);
    const ins = inputs.map((i) => nodes[i]!);
    // An elementwise op whose every operand is a whole tensor of its size or a scalar (no
    // broadcasting: an element's place in the shape does not matter, and dropout's draws go by
    // the flat index) runs in the shape of a reshaped operand, its result reshaped instead: it
    // can then join the kernel that makes that operand as an epilogue (a linear layer over
    // [B·T, C] and the residual add over [B, T, C] become one kernel). Not expand (its shape is
    // an attribute) nor batch norm's ops (they read [C] operands along axis 1).
    const size = numel(n.shape);
    const reshaped = ins.find((i) => i.op === 'reshape' && !sameShape(nodes[i.inputs[0]!]!.shape, n.shape));
    if (reshaped && elementwiseOf(n.op, n.attrs) && n.op !== 'expand' && !n.op.startsWith('batch_norm') && ins.every((i) => numel(i.shape) === 1 || numel(i.shape) === size)) {
      const shape = nodes[reshaped.inputs[0]!]!.shape;
      const inner = emit({ ...n, inputs: inputs.map((id) => (numel(nodes[id]!.shape) === 1 ? id : view(id, shape, n))), shape });
      remap[n.id] = view(inner, n.shape, n);
      continue;
    }
    const identity = (n.op === 'reshape' || n.op === 'expand' || n.op === 'sum_to') && sameShape(ins[0]!.shape, n.shape);
    if (identity) {
      remap[n.id] = inputs[0]!;
      continue;
    }
    // where(c, a, b) with c a constant that is everywhere false (or true) is b (or a) when that
    // operand has the result's shape: a causal mask's row that hides nothing, as the last
    // position's step (last-position.ts) reads it.
    if (n.op === 'where') {
      const picked = constantChoice(constantValue({ nodes }, inputs[0]!, constants));
      if (picked !== undefined && sameShape(ins[picked]!.shape, n.shape)) {
        remap[n.id] = inputs[picked]!;
        continue;
      }
    }
    let node: Omit<Node, 'id'> = { ...n, inputs };
    if (n.op === 'reshape' && ins[0]!.op === 'reshape') node = { ...node, inputs: ins[0]!.inputs };
    if (n.op === 'permute' && ins[0]!.op === 'permute') {
      const inner = ints(ins[0]!.attrs, 'dims');
      const dims = ints(n.attrs, 'dims').map((d) => inner[d]!);
      if (dims.every((d, i) => d === i)) {
        remap[n.id] = ins[0]!.inputs[0]!;
        continue;
      }
      node = { ...node, inputs: ins[0]!.inputs, attrs: { dims } };
    }
    if (n.op === 'matmul') node = { ...node, ...foldTransposes(node, ins, (k) => seen.get(k)) };
    const value = ins.length > 0 && ins.every((i) => i.op === 'const') && numel(n.shape) === 1 ? fold(n, ins) : undefined;
    if (value !== undefined) node = { ...node, op: 'const', inputs: [], attrs: { value } };
    const key = node.op === 'input' || node.op === 'param' ? undefined : keyOf(node);
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
