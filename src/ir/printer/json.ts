import type { Graph } from '../graph.ts';
import { summarize } from './summary.ts';

/**
 * The stable JSON form of a graph (documented in README.md, "IR dumps"):
 * { stage, batchSize, nodes: [{ id, op, shape, inputs, attrs, loc, scope, phase }],
 *   params: [{ name, shape }], state: [{ name, shape, kind }], inputs, outputs, updates, grads,
 *   summary: { flopsPerStep, paramCount, opCounts } }
 */
export function toJson(g: Graph): object {
  return {
    stage: g.stage,
    batchSize: g.batchSize,
    nodes: g.nodes.map((n) => ({
      id: n.id,
      op: n.op,
      shape: n.shape,
      inputs: n.inputs,
      attrs: n.attrs,
      loc: n.loc ? `${n.loc.file}:${n.loc.line}:${n.loc.col}` : null,
      scope: n.scope ?? null,
      phase: n.phase,
    })),
    params: g.state.filter((s) => s.kind === 'param').map((s) => ({ name: s.name, shape: s.shape })),
    state: g.state.map((s) => ({ name: s.name, shape: s.shape, kind: s.kind })),
    inputs: g.inputs,
    outputs: g.outputs,
    updates: g.updates,
    grads: g.grads,
    summary: summarize(g),
  };
}

export function printJson(g: Graph): string {
  return JSON.stringify(toJson(g), null, 2) + '\n';
}
