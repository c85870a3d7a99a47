import { humanBytes, kernelJson, kernelLine, memoryLines, type KernelRow } from '../ir/printer/program.ts';
import { numel } from '../ir/shape.ts';
import { baseOf, type KernelGraph } from './kernel-graph.ts';
import { planMemory } from './plan-memory.ts';

/** Kernels before memory planning: values by name and size, no offsets yet. */
function rows(kg: KernelGraph): KernelRow[] {
  const s = (v: number) => ({ value: kg.values[baseOf(kg.values, v)]!.name, shape: kg.values[v]!.shape, bytes: 4 * Math.max(1, numel(kg.values[v]!.shape)) });
  return kg.kernels.map((k, i) => ({ name: `k${i}_${k.kind}`, kind: k.kind, ops: k.ops, attrs: k.attrs, inputs: k.inputs.map(s), outputs: k.outputs.map(s), ...(k.expr ? { expr: k.expr } : {}) }));
}

/**
 * One line per kernel, then what planning memory in this order would give: the dump of the
 * fusion and scheduling passes (`kiln ir --stage fused|scheduled`).
 */
export function printKernelGraphText(kg: KernelGraph, stage: string): string {
  const m = planMemory(kg).memory;
  const persistent = [...kg.state.map((s) => s.value), ...Object.values(kg.grads)].reduce((a, v) => a + 4 * numel(kg.values[v]!.shape), 0);
  return [
    `# ${stage} ${kg.stage} step, batch ${kg.batchSize}: ${kg.kernels.length} kernels`,
    ...rows(kg).map(kernelLine),
    '',
    ...memoryLines(m).map((l, i) => (i === 0 ? `${l} (planned in this order)` : l)),
    `         persistent: ${kg.state.length} tensors and ${Object.keys(kg.grads).length} gradients, ${humanBytes(persistent)}`,
  ].join('\n') + '\n';
}

export function printKernelGraphJson(kg: KernelGraph, stage: string): string {
  return JSON.stringify({ stage, step: kg.stage, batchSize: kg.batchSize, kernels: rows(kg).map(kernelJson), memory: planMemory(kg).memory }, null, 2) + '\n';
}
