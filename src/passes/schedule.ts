import { numel } from '../ir/shape.ts';
import { baseOf, producers, type KernelGraph } from './kernel-graph.ts';

/** Values whose place lasts the whole step (state, gradients, constants): scheduling cannot free them. */
export function persistentValues(kg: KernelGraph): Set<number> {
  return new Set([...kg.state.map((s) => s.value), ...Object.values(kg.grads), ...kg.values.filter((v) => v.constant !== undefined).map((v) => v.id)]);
}

/**
 * A topological order of the kernels that keeps peak memory low: list scheduling that, among
 * the kernels ready to run, picks the one that adds the fewest bytes (what it writes minus what
 * it lets die), ties going to the fusion order. Besides the data dependencies, every kernel that
 * reads a persistent tensor's old value runs before the kernel that computes its new value, so
 * that the new value can be written in place (unless that would make a cycle; the planner then
 * copies).
 */
export function schedule(kg: KernelGraph): KernelGraph {
  const n = kg.kernels.length;
  const base = (v: number) => baseOf(kg.values, v);
  const prod = producers(kg);
  const deps = kg.kernels.map((k, i) => new Set(k.inputs.flatMap((v) => {
    const p = prod.get(base(v));
    return p === undefined || p === i ? [] : [p];
  })));
  const ancestors = (i: number): Set<number> => {
    const seen = new Set<number>();
    const stack = [i];
    while (stack.length) for (const d of deps[stack.pop()!]!) if (!seen.has(d)) seen.add(d), stack.push(d);
    return seen;
  };
  for (const s of kg.state) {
    const u = kg.updates[s.name];
    const writer = u === undefined ? undefined : prod.get(base(u));
    if (writer === undefined) continue;
    kg.kernels.forEach((k, r) => {
      if (r === writer || !k.inputs.some((v) => base(v) === s.value)) return;
      if (!ancestors(r).has(writer)) deps[writer]!.add(r);
    });
  }

  const persistent = persistentValues(kg);
  const size = (v: number) => (persistent.has(base(v)) ? 0 : 4 * numel(kg.values[base(v)]!.shape));
  const pending = new Map<number, number>();
  for (const k of kg.kernels) for (const v of new Set(k.inputs.map(base))) pending.set(v, (pending.get(v) ?? 0) + 1);
  const outputs = new Set(Object.values(kg.outputs).map(base));
  const done = new Set<number>();
  const order: number[] = [];
  while (order.length < n) {
    let best = -1;
    let bestCost = Infinity;
    for (let i = 0; i < n; i++) {
      if (done.has(i) || ![...deps[i]!].every((d) => done.has(d))) continue;
      const k = kg.kernels[i]!;
      const freed = [...new Set(k.inputs.map(base))].filter((v) => pending.get(v) === 1 && !outputs.has(v)).reduce((a, v) => a + size(v), 0);
      const cost = k.outputs.reduce((a, v) => a + size(v), 0) - freed;
      if (cost < bestCost) [best, bestCost] = [i, cost];
    }
    if (best < 0) throw new Error('schedule: the kernels depend on each other in a cycle');
    done.add(best);
    order.push(best);
    for (const v of new Set(kg.kernels[best]!.inputs.map(base))) pending.set(v, pending.get(v)! - 1);
  }
  return { ...kg, kernels: order.map((i) => kg.kernels[i]!) };
}
