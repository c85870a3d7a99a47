import { valueKey } from '../ir/value-key.ts';
import type { ExprStep } from '../ir/expr.ts';
import { KERNEL_KINDS } from '../ir/kernels.ts';
import { numel } from '../ir/shape.ts';
import type { FusedKernel, KernelGraph } from './kernel-graph.ts';

/** How a per-parameter update kernel uses each of its inputs and outputs. */
interface Roles {
  param: string;
  inputs: string[];
  outputs: string[];
}

/**
 * The roles of an `elementwise` kernel that updates one parameter and its optimizer state
 * from its gradient: inputs are the parameter, its state (`<param>.<slot>`), its gradient and
 * scalars (the step, a schedule's lr, or one computed from them); outputs are new values of the parameter and its state. Undefined for any
 * other kernel.
 */
function rolesOf(kg: KernelGraph, k: FusedKernel): Roles | undefined {
  if (k.kind !== 'elementwise') return undefined;
  const stateName = new Map(kg.state.map((s) => [s.value, s.name]));
  const updateOf = new Map(Object.entries(kg.updates).map(([name, v]) => [v, name]));
  const written = k.outputs.map((v) => updateOf.get(v));
  const params = kg.state.filter((s) => s.kind === 'param').map((s) => s.name);
  const param = params.find((p) => written.every((n) => n !== undefined && (n === p || n.startsWith(`${p}.`))));
  if (param === undefined) return undefined;
  const role = (name: string) => (name === param ? 'param' : `slot ${name.slice(param.length + 1)}`);
  const inputNames = new Map(Object.entries(kg.inputs).map(([n, v]) => [v, n]));
  const inputs: string[] = [];
  for (const v of k.inputs) {
    const s = stateName.get(v);
    if (s !== undefined && (s === param || s.startsWith(`${param}.`))) inputs.push(role(s));
    else if (kg.grads[param] === v) inputs.push('grad');
    else if (inputNames.has(v) && numel(kg.values[v]!.shape) <= 1) inputs.push(`shared ${inputNames.get(v)}`);
    // A scalar computed once for every update, as AdamW's 1 - lr·wd under a scheduled lr.
    else if (numel(kg.values[v]!.shape) <= 1 && !stateName.has(v)) inputs.push(`shared %${v}`);
    else return undefined;
  }
  return { param, inputs, outputs: written.map((n) => role(n!)) };
}

/**
 * One multi-tensor (`foreach`) kernel for the optimizer update of many parameters: kernels that
 * update one parameter each, with the same expression (same optimizer, same hyperparameters),
 * become groups of one launch. The storage-buffer limit sets how many groups one launch holds:
 * each group binds its parameter, gradient and state once (they are updated in place), so Adam
 * fits two parameters in eight buffers and SGD with momentum two; without a limit (wasm) one
 * launch holds them all.
 */
export function packUpdates(kg: KernelGraph, limit: number): KernelGraph {
  const roles = kg.kernels.map((k) => rolesOf(kg, k));
  const readers = new Set(kg.kernels.flatMap((k) => k.inputs));
  const bySignature = new Map<string, number[]>();
  kg.kernels.forEach((k, i) => {
    const r = roles[i];
    if (!r || k.outputs.some((v) => readers.has(v))) return;
    const sig = valueKey([r.inputs, r.outputs, k.expr]);
    bySignature.set(sig, [...(bySignature.get(sig) ?? []), i]);
  });
  const replaced = new Map<number, FusedKernel | null>();
  for (const members of bySignature.values()) {
    const r = roles[members[0]!]!;
    const k0 = kg.kernels[members[0]!]!;
    const shared = r.inputs.map((role, i) => (role.startsWith('shared') ? i : -1)).filter((i) => i >= 0);
    const own = r.inputs.map((role, i) => (role.startsWith('shared') ? -1 : i)).filter((i) => i >= 0);
    // Updated state is written in place, so each group binds only its own inputs: every one of
    // them, one-element tensors included (src/ir/kernels.ts: bindsStorage). The shared inputs
    // bind once per launch, but the step counter, which shaders read from a uniform (a
    // schedule's lr and momentum are in the arena).
    const perGroup = own.length;
    const sharedBuffers = r.inputs.filter((role) => role.startsWith('shared') && role !== 'shared step').length;
    const fit = Math.floor((limit - sharedBuffers) / Math.max(1, perGroup));
    if (members.length < 2 || fit < 2) continue;
    const renumber = (s: ExprStep): ExprStep => (s.prim === 'input' ? { ...s, input: own.includes(s.input) ? own.indexOf(s.input) : own.length + shared.indexOf(s.input) } : s);
    const expr = { steps: k0.expr!.steps.map(renumber), outputs: k0.expr!.outputs };
    for (let at = 0; at < members.length; at += fit) {
      const chunk = members.slice(at, at + fit);
      if (chunk.length < 2) break;
      const ks = chunk.map((i) => kg.kernels[i]!);
      const packed: FusedKernel = {
        ops: ks.flatMap((k) => k.ops),
        ...KERNEL_KINDS.foreach.build(
          { groups: chunk.length, groupInputs: own.length, groupOutputs: k0.outputs.length },
          { grouped: ks.flatMap((k) => own.map((i) => k.inputs[i]!)), shared: shared.map((i) => k0.inputs[i]!) },
          { grouped: ks.flatMap((k) => k.outputs) },
          expr,
        ),
      };
      // Where the last of them ran: every gradient it reads is ready there.
      chunk.forEach((i, j) => replaced.set(i, j === chunk.length - 1 ? packed : null));
    }
  }
  if (replaced.size === 0) return kg;
  const kernels = kg.kernels.flatMap((k, i) => {
    const r = replaced.get(i);
    return r === undefined ? [k] : r === null ? [] : [r];
  });
  return { ...kg, kernels };
}
