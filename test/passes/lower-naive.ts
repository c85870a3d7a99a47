import type { Graph } from '../../src/ir/graph.ts';
import { ARENA_ALIGN, type Kernel, type Program, type Slice } from '../../src/ir/program.ts';
import { numel } from '../../src/ir/shape.ts';

const align = (n: number) => Math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN;

/**
 * The simplest correct Program, for tests of codegen and backends that need a Program without
 * the fusion and memory planning of src/passes/compile.ts: one kernel per non-leaf node in graph
 * order, every value in its own place, and each persistent tensor's update copied onto the
 * tensor by a copy kernel after all the others, so every kernel reads the old values.
 */
export function lowerNaive(g: Graph): Program {
  let next = 0;
  const place = (shape: readonly number[]): Slice => {
    const bytes = 4 * Math.max(1, numel(shape));
    const s = { offset: next, bytes, shape: [...shape] };
    next += align(bytes);
    return s;
  };
  const slices: Slice[] = g.nodes.map((n) => place(n.shape));
  const kernels: Kernel[] = [];
  for (const n of g.nodes) {
    if (n.op === 'input' || n.op === 'param' || n.op === 'const') continue;
    kernels.push({ name: `k${kernels.length}_${n.op}`, kind: n.op, ops: [n.op], attrs: n.attrs, inputs: n.inputs.map((i) => slices[i]!), outputs: [slices[n.id]!] });
  }
  for (const [name, node] of Object.entries(g.updates)) {
    const target = slices[g.state.find((s) => s.name === name)!.node]!;
    kernels.push({ name: `k${kernels.length}_copy`, kind: 'copy', ops: [], attrs: {}, inputs: [slices[node]!], outputs: [target] });
  }
  const rec = (r: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, slices[v]!]));
  return {
    stage: g.stage,
    batchSize: g.batchSize,
    kernels,
    state: g.state.map((s) => ({ name: s.name, kind: s.kind, init: s.init, slice: slices[s.node]! })),
    inputs: rec(g.inputs),
    outputs: rec(g.outputs),
    constants: g.nodes.filter((n) => n.op === 'const').map((n) => ({ slice: slices[n.id]!, value: n.attrs.value as number })),
    memory: { arenaBytes: next, naiveBytes: next, lowerBoundBytes: next },
  };
}
