import type { Graph } from '../graph.ts';
import { getOp } from '../op.ts';
import { numel } from '../shape.ts';

export interface GraphSummary {
  /** Every node's FLOPs; leaves and views count 0. */
  flopsPerStep: number;
  /** Trainable parameters (elements). */
  paramCount: number;
  opCounts: Record<string, number>;
}

export function summarize(g: Graph): GraphSummary {
  let flopsPerStep = 0;
  const opCounts: Record<string, number> = {};
  for (const n of g.nodes) {
    flopsPerStep += getOp(n.op).flops(n.inputs.map((i) => g.nodes[i]!.shape), n.shape, n.attrs);
    opCounts[n.op] = (opCounts[n.op] ?? 0) + 1;
  }
  const paramCount = g.state.filter((s) => s.kind === 'param').reduce((p, s) => p + numel(s.shape), 0);
  return { flopsPerStep, paramCount, opCounts };
}

/** 1234567 -> "1.23 M" */
export function humanCount(n: number): string {
  const units = ['', ' k', ' M', ' G', ' T'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? String(n) : `${n.toPrecision(3)}${units[i]}`;
}
