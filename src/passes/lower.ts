import type { Graph } from '../ir/graph.ts';
import { ARENA_ALIGN, type Kernel, type Program, type Slice } from '../ir/program.ts';
import { numel } from '../ir/shape.ts';

const align = (n: number) => Math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN;

/**
 * The simplest correct Program: one kernel per non-leaf node in graph order, every value in its
 * own place, persistent updates copied back by the kernels that compute them (the update node's
 * output slice is the state tensor's own slice, which is legal because nothing reads the old
 * value after its last use in the graph order... only when that holds; otherwise a copy).
 * Fusion and memory planning (src/passes/fuse.ts, plan-memory.ts) improve on it.
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
  const stateByNode = new Map(g.state.map((s) => [s.node, s]));
  const kernels: Kernel[] = [];
  for (const n of g.nodes) {
    if (n.op === 'input' || n.op === 'param' || n.op === 'const') continue;
    kernels.push({ name: `k${kernels.length}_${n.op}`, kind: n.op, ops: [n.op], attrs: n.attrs, inputs: n.inputs.map((i) => slices[i]!), outputs: [slices[n.id]!] });
  }
  // Updates are written back after the whole step, so every kernel saw the old values.
  for (const [name, node] of Object.entries(g.updates)) {
    const target = slices[g.state.find((s) => s.name === name)!.node]!;
    kernels.push({ name: `k${kernels.length}_copy`, kind: 'copy', ops: [], attrs: {}, inputs: [slices[node]!], outputs: [target] });
  }
  const rec = (r: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, slices[v]!]));
  return {
    stage: g.stage,
    batchSize: g.batchSize,
    kernels,
    state: g.state.map((s) => ({ name: s.name, kind: s.kind, init: s.init, slice: slices[stateByNode.get(s.node)!.node]! })),
    inputs: rec(g.inputs),
    outputs: rec(g.outputs),
    constants: g.nodes.filter((n) => n.op === 'const').map((n) => ({ slice: slices[n.id]!, value: n.attrs.value as number })),
    memory: { arenaBytes: next, naiveBytes: next, lowerBoundBytes: next },
  };
}
