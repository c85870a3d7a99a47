import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { WEBGPU_PORTABLE } from '../../src/codegen/wgsl/target.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { fuse } from '../../src/passes/fuse.ts';
import { baseOf, type KernelGraph } from '../../src/passes/kernel-graph.ts';
import { planMemory } from '../../src/passes/plan-memory.ts';
import { recomputeOrStore } from '../../src/passes/recompute.ts';
import { schedule } from '../../src/passes/schedule.ts';
import { simplify } from '../../src/passes/simplify.ts';
import { modelGraphs, randomModel, SAMPLES, sampleGraph } from './helpers.ts';

const prepare = (g: Graph) => recomputeOrStore(fuse(simplify(g), WEBGPU_PORTABLE), WEBGPU_PORTABLE);

function runnable(kg: KernelGraph): boolean {
  const written = new Set([...kg.state.map((s) => s.value), ...Object.values(kg.inputs), ...kg.values.filter((v) => v.constant !== undefined).map((v) => v.id)]);
  return kg.kernels.every((k) => {
    const ok = k.inputs.every((v) => written.has(baseOf(kg.values, v)));
    for (const v of k.outputs) written.add(v);
    return ok;
  });
}

describe('schedule', () => {
  it('runs a branch to its end before starting the next, halving the peak', () => {
    // Two convolutions of x, each reduced to a small sum: in graph order both big outputs are
    // live at once; scheduled, each dies before the other is made.
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [4, 1, 16, 16] });
    const w1 = b.addState({ name: 'w1', shape: [8, 1, 3, 3], kind: 'param', init: { kind: 'constant', value: 1 } });
    const w2 = b.addState({ name: 'w2', shape: [8, 1, 3, 3], kind: 'param', init: { kind: 'constant', value: 1 } });
    const conv = { stride: [1, 1], padding: [0, 0] };
    const a1 = b.op('conv2d', [x, w1], conv);
    const b1 = b.op('conv2d', [x, w2], conv);
    const s = (v: number) => b.op('sum', [v], { axes: [1, 2, 3], keepdim: false });
    const out = b.op('add', [s(a1), s(b1)]);
    const kg = prepare({ stage: 'eval', nodes: b.nodes, state: b.state, inputs: { x }, outputs: { logits: out }, updates: {}, grads: {}, batchSize: 4 });
    expect(kg.kernels.map((k) => k.kind)).toEqual(['conv2d', 'conv2d', 'sum', 'sum', 'elementwise']);
    const sched = schedule(kg);
    expect(sched.kernels.map((k) => k.kind)).toEqual(['conv2d', 'sum', 'conv2d', 'sum', 'elementwise']);
    // One convolution output (25088 bytes) less at the peak, which holds the first sum (256 bytes) instead.
    const conv1 = 4 * 8 * 14 * 14 * 4;
    expect(planMemory(kg).memory.lowerBoundBytes - planMemory(sched).memory.lowerBoundBytes).toBe(conv1 - 256);
  });

  it.each(SAMPLES)('%s: every reader of a persistent tensor runs before the kernel that writes its new value', async (name) => {
    const kg = schedule(prepare(await sampleGraph(name, 'train')));
    expect(runnable(kg)).toBe(true);
    const writer = (v: number) => kg.kernels.findIndex((k) => k.outputs.includes(v));
    for (const s of kg.state) {
      const u = kg.updates[s.name];
      if (u === undefined) continue;
      const readers = kg.kernels.flatMap((k, i) => (k.inputs.some((v) => baseOf(kg.values, v) === s.value) ? [i] : []));
      for (const r of readers) expect(r, `${s.name} read by kernel ${r} after its update`).toBeLessThanOrEqual(writer(u));
    }
  });

  it('keeps random models runnable', () => {
    for (let seed = 0; seed < 30; seed++) {
      const m = randomModel(seed);
      for (const g of Object.values(modelGraphs(m.make, m.input, 3))) expect(runnable(schedule(prepare(g))), m.describe).toBe(true);
    }
  });
});
