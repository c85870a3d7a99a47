import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/ir/builder.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { simplify } from '../../src/passes/simplify.ts';
import { randomFeeds, runGraph, SAMPLES, sampleGraph } from './helpers.ts';

function graphOf(b: GraphBuilder, outputs: Record<string, number>, x: number): Graph {
  return { stage: 'eval', nodes: b.nodes, state: b.state, inputs: { x }, outputs, updates: {}, grads: {}, batchSize: 2 };
}

const ops = (g: Graph) => g.nodes.map((n) => n.op);

describe('simplify', () => {
  it('folds constant arithmetic, rounding as the step would store it', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 3] });
    const c = b.op('mul', [b.constant(0.1), b.op('add', [b.constant(2), b.constant(1)])]);
    const g = simplify(graphOf(b, { logits: b.op('mul', [x, c]) }, x));
    expect(ops(g)).toEqual(['input', 'const', 'mul']);
    expect(g.nodes[1]!.attrs.value).toBe(Math.fround(Math.fround(0.1) * 3));
  });

  it('merges common subexpressions, including equal constants and dropouts', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 3] });
    const step = b.op('input', [], { name: 'step', shape: [] });
    const d1 = b.op('dropout', [x, step], { p: 0.5, stream: 0 });
    const d2 = b.op('dropout', [x, step], { p: 0.5, stream: 0 });
    const d3 = b.op('dropout', [x, step], { p: 0.5, stream: 1 });
    const s = b.op('add', [b.op('mul', [d1, b.constant(2)]), b.op('mul', [d2, b.constant(2)])]);
    const g = simplify({ ...graphOf(b, { logits: b.op('add', [s, d3]) }, x), inputs: { x, step } });
    expect(ops(g)).toEqual(['input', 'input', 'dropout', 'dropout', 'const', 'mul', 'add', 'add']);
    expect(g.nodes[3]!.attrs.stream).toBe(1);
    expect(g.nodes[6]!.inputs).toEqual([5, 5]);
  });

  it('collapses reshape chains and removes identity views', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 3, 4] });
    const r = b.op('reshape', [b.op('reshape', [b.op('reshape', [x], { shape: [6, 4] })], { shape: [24] })], { shape: [2, 12] });
    const same = b.op('expand', [b.op('reshape', [r], { shape: [2, 12] })], { shape: [2, 12] });
    const g = simplify(graphOf(b, { logits: b.op('sum', [same], { axes: [1], keepdim: false }) }, x));
    expect(ops(g)).toEqual(['input', 'reshape', 'sum']);
    expect(g.nodes[1]!.inputs).toEqual([0]);
    expect(g.nodes[1]!.shape).toEqual([2, 12]);
  });

  it('runs an elementwise op in the shape of its reshaped operand when nothing broadcasts, and only then', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [6, 4] });
    const r = b.op('input', [], { name: 'r', shape: [2, 3, 4] });
    const bias = b.op('input', [], { name: 'bias', shape: [4] });
    const viewed = b.op('reshape', [x], { shape: [2, 3, 4] });
    // add(view of x, r): runs over [6, 4] on x and a view of r, then reshaped back.
    const sum = b.op('add', [viewed, r]);
    // add(view of x, bias [4]) broadcasts: left as it is.
    const broadcast = b.op('add', [viewed, bias]);
    const g = simplify(graphOf(b, { logits: sum, other: broadcast }, x));
    const out = g.nodes[g.outputs.logits!]!;
    expect(out).toMatchObject({ op: 'reshape', shape: [2, 3, 4] });
    const add = g.nodes[out.inputs[0]!]!;
    expect(add).toMatchObject({ op: 'add', shape: [6, 4] });
    expect(g.nodes[add.inputs[0]!]!.op).toBe('input');
    expect(g.nodes[add.inputs[1]!]!).toMatchObject({ op: 'reshape', shape: [6, 4] });
    expect(g.nodes[g.outputs.other!]!).toMatchObject({ op: 'add', shape: [2, 3, 4] });
  });

  it('composes permutes, drops those that cancel, and reads transposed matmul operands through the trans flags', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 3, 4, 5] });
    const heads = b.op('permute', [x], { dims: [0, 2, 1, 3] }); // [2, 4, 3, 5]
    const kt = b.op('permute', [heads], { dims: [0, 1, 3, 2] }); // [2, 4, 5, 3]
    const att = b.op('matmul', [heads, kt], { transA: false, transB: false }); // [2, 4, 3, 3]
    const back = b.op('permute', [heads], { dims: [0, 2, 1, 3] }); // x again
    const moved = b.op('permute', [heads], { dims: [3, 0, 1, 2] }); // [5, 2, 4, 3]
    const g = simplify(graphOf(b, { logits: att, x: back, moved }, x));
    const mm = g.nodes.find((n) => n.op === 'matmul')!;
    expect(mm.attrs).toEqual({ transA: false, transB: true });
    expect(mm.inputs).toEqual([1, 1]);
    expect(g.nodes[g.outputs.x!]!.op).toBe('input');
    expect(g.nodes[g.outputs.moved!]!).toMatchObject({ op: 'permute', inputs: [0], attrs: { dims: [3, 0, 2, 1] }, shape: [5, 2, 4, 3] });
    expect(ops(g)).toEqual(['input', 'permute', 'matmul', 'permute']);
  });

  it('reads where(c, a, b) as b (or a) when c is a constant false (or true) everywhere, sliced or not', () => {
    // A causal mask's last row hides nothing: the step cut to its last position (last-position.ts)
    // then fuses as attention without a mask. Rows that hide something keep their where.
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 4] });
    const i = b.op('iota', [], { shape: [4, 1], dim: 0 });
    const j = b.op('iota', [], { shape: [1, 4], dim: 1 });
    const mask = b.op('gt', [j, i]);
    const last = b.op('slice', [mask], { dim: 0, start: 3, end: 4 });
    const first = b.op('slice', [mask], { dim: 0, start: 0, end: 1 });
    const inf = b.constant(-Infinity);
    const g = simplify(graphOf(b, { a: b.op('where', [last, inf, x]), b: b.op('where', [first, inf, x]) }, x));
    expect(g.outputs.a).toBe(g.inputs.x);
    expect(g.nodes[g.outputs.b!]!.op).toBe('where');
    const feeds = { x: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8) };
    expect(Array.from(runGraph(g, feeds, new Map()).get('b')!)).toEqual([1, -Infinity, -Infinity, -Infinity, 5, -Infinity, -Infinity, -Infinity]);
  });

  it('drops what nothing reads and keeps the step interface', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2] });
    b.op('neg', [x]);
    const g = simplify(graphOf(b, { logits: b.op('relu', [x]) }, x));
    expect(ops(g)).toEqual(['input', 'relu']);
    expect(g.outputs).toEqual({ logits: 1 });
    expect(g.inputs).toEqual({ x: 0 });
  });

  // Every rewrite keeps each value bit for bit, so the comparison is exact.
  it.each(SAMPLES.flatMap((s) => [[s, 'train'], [s, 'eval']] as const))('%s %s step computes exactly the same after simplify', async (name, stage) => {
    const g = await sampleGraph(name, stage, 4);
    const s = simplify(g);
    expect(s.nodes.length).toBeLessThanOrEqual(g.nodes.length);
    const { feeds, state } = randomFeeds(g, 1);
    expect(runGraph(s, feeds, state)).toEqual(runGraph(g, feeds, state));
  });
});
