import { GraphBuilder } from '../ir/builder.ts';
import { elementwiseOf } from '../ir/elementwise.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ints, num } from '../ir/op.ts';
import { eliminateDeadCode } from './dce.ts';

/** Per input of a node whose output is cut to its last index along an axis: the input's axis to cut, or 'full'. */
type InputCuts = (number | 'full')[];

const prod = (s: readonly number[]) => s.reduce((a, d) => a * d, 1);

/**
 * Where a node's output cut to the last index along `axis` comes from: the same node over its
 * inputs cut along the axes returned (row-wise ops: linear and layer norm on their rows, softmax
 * off its axis, matmul on a row or column of its product, views, elementwise ops, where a
 * broadcast input is read whole), or undefined when the node must be computed whole and sliced.
 */
function cutThrough(n: Node, axis: number, shapeOf: (id: number) => readonly number[]): InputCuts | undefined {
  const R = n.shape.length;
  const same = (extra: InputCuts = []) => [axis, ...extra];
  switch (n.op) {
    case 'reshape': {
      const x = shapeOf(n.inputs[0]!);
      const outer = prod(n.shape.slice(0, axis));
      const b = x.findIndex((d, i) => d === n.shape[axis] && prod(x.slice(0, i)) === outer);
      return b < 0 ? undefined : [b];
    }
    case 'permute':
      return [ints(n.attrs, 'dims')[axis]!];
    case 'linear':
      return axis < R - 1 ? same(n.inputs.slice(1).map(() => 'full' as const)) : undefined;
    case 'layer_norm':
      return axis < R - num(n.attrs, 'dims') ? same() : undefined;
    case 'softmax':
      return axis !== num(n.attrs, 'dim') ? same() : undefined;
    case 'slice':
      return axis !== num(n.attrs, 'dim') ? same() : undefined;
    case 'matmul': {
      const [a, b] = [shapeOf(n.inputs[0]!), shapeOf(n.inputs[1]!)];
      if (a.length < 2 || b.length < 2) return undefined;
      const { transA, transB } = n.attrs;
      if (axis === R - 2) return [transA ? a.length - 1 : a.length - 2, 'full'];
      if (axis === R - 1) return ['full', transB ? b.length - 2 : b.length - 1];
      return [a, b].map((s) => broadcastCut(s, R, axis));
    }
    default:
      // Elementwise ops whose value at an element does not depend on where it is.
      if (!elementwiseOf(n.op, n.attrs) || n.op === 'expand' || n.op === 'dropout' || n.op.startsWith('batch_norm') || n.op === 'iota') return undefined;
      return n.inputs.map((i) => broadcastCut(shapeOf(i), R, axis));
  }
}

/** An input broadcast (right-aligned) against an output of rank R, cut with it along `axis`: its own axis, or whole where it does not vary. */
function broadcastCut(s: readonly number[], R: number, axis: number): number | 'full' {
  const a = axis - (R - s.length);
  return a < 0 || s[a] === 1 ? 'full' : a;
}

/**
 * A language model's evaluation step at batch 1 cut down to what the next byte needs: the
 * logits of the window's last position, [1, V] (and the cross-entropy of that one row against a
 * one-element `labels`). Each node that only that row reads runs on its last row alone: the cut
 * moves from the logits back through the head, the final layer norm and the last block's MLP,
 * residual adds and attention output (one query row over every key), and stops where a value is
 * read whole (the last block's keys and values come from the whole window), which is computed
 * whole and sliced. For the 4-block GPT that is most of the last block and the head: the same
 * values as the full step's last row, for about a fifth less work.
 */
export function lastPositionGraph(g: Graph): Graph {
  const logits = g.outputs.logits;
  if (g.stage !== 'eval' || g.batchSize !== 1 || logits === undefined || g.nodes[logits]!.shape.length !== 2) {
    throw new Error('lastPositionGraph needs the evaluation graph of a language model at batch 1 (logits [T, V])');
  }
  const shapeOf = (id: number) => g.nodes[id]!.shape;
  // What each node must provide: its whole value, and/or its last index along some axes.
  const full = new Array<boolean>(g.nodes.length).fill(false);
  const cuts = g.nodes.map(() => new Set<number>());
  cuts[logits]!.add(0);
  const through = new Map<string, InputCuts>();
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    const n = g.nodes[id]!;
    if (full[id]) for (const i of n.inputs) full[i] = true;
    for (const axis of cuts[id]!) {
      const m = full[id] ? undefined : cutThrough(n, axis, shapeOf);
      if (!m) {
        full[id] = true;
        for (const i of n.inputs) full[i] = true;
        continue;
      }
      through.set(`${id}:${axis}`, m);
      m.forEach((c, k) => (c === 'full' ? (full[n.inputs[k]!] = true) : cuts[n.inputs[k]!]!.add(c)));
    }
  }

  const b = new GraphBuilder();
  const wholeOf = new Map<number, number>();
  const cutOf = new Map<string, number>();
  const state = new Map(g.state.map((s) => [s.node, s]));
  const inputs: Record<string, number> = {};
  for (const n of g.nodes) {
    b.loc = n.loc;
    b.scope = n.scope;
    const s = state.get(n.id);
    // Every persistent tensor stays (a step's interface is fixed: weights load by name).
    if (s) wholeOf.set(n.id, b.addState({ name: s.name, shape: s.shape, kind: s.kind, init: s.init }));
    else if (full[n.id]) wholeOf.set(n.id, b.op(n.op, n.inputs.map((i) => wholeOf.get(i)!), n.attrs));
    if (n.op === 'input' && full[n.id]) inputs[String(n.attrs.name)] = wholeOf.get(n.id)!;
    for (const axis of cuts[n.id]!) {
      const m = through.get(`${n.id}:${axis}`);
      const size = n.shape[axis]!;
      let id: number;
      if (full[n.id] || !m) {
        id = size === 1 ? wholeOf.get(n.id)! : b.op('slice', [wholeOf.get(n.id)!], { dim: axis, start: size - 1, end: size });
      } else {
        const ins = n.inputs.map((i, k) => (m[k] === 'full' ? wholeOf.get(i)! : cutOf.get(`${i}:${m[k]}`)!));
        const attrs = n.op === 'reshape' ? { shape: n.shape.map((d, i) => (i === axis ? 1 : d)) } : n.attrs;
        id = b.op(n.op, ins, attrs);
      }
      cutOf.set(`${n.id}:${axis}`, id);
    }
  }
  const out = cutOf.get(`${logits}:0`)!;
  b.loc = g.nodes[logits]!.loc;
  const labels = b.op('input', [], { name: 'labels', shape: [1] });
  const loss = b.op('cross_entropy', [out, labels]);
  return eliminateDeadCode({ stage: 'eval', nodes: b.nodes, state: b.state, inputs: { ...inputs, labels }, outputs: { logits: out, loss }, updates: {}, grads: {}, batchSize: 1 });
}
