import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/ir/builder.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { ARENA_ALIGN } from '../../src/ir/program.ts';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { WEBGPU_PORTABLE } from '../../src/codegen/wgsl/target.ts';
import { verifyProgram } from '../../src/ir/verify-program.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { modelGraphs, randomFeeds, randomModel, runGraph, runProgram, SAMPLES, sampleGraph } from './helpers.ts';

const TARGETS = [WASM_TARGET, WEBGPU_PORTABLE];

describe('plan memory', () => {
  it.each(SAMPLES.flatMap((s) => TARGETS.flatMap((t) => [[s, 'train', t.name, t], [s, 'eval', t.name, t]] as const)))('%s %s for %s: sound, within 1.10 of the lower bound, well under naive', async (name, stage, _, target) => {
    const p = compileProgram(await sampleGraph(name, stage, 64), target);
    expect(verifyProgram(p, target)).toEqual([]);
    const { arenaBytes, naiveBytes, lowerBoundBytes } = p.memory;
    expect(arenaBytes).toBeLessThanOrEqual(1.1 * lowerBoundBytes);
    expect(arenaBytes).toBeGreaterThanOrEqual(lowerBoundBytes);
    expect(arenaBytes).toBeLessThan(naiveBytes);
    for (const k of p.kernels) for (const s of [...k.inputs, ...k.outputs]) expect(s.offset % ARENA_ALIGN).toBe(0);
  });

  it.each(SAMPLES)('%s at batch 64 on wasm: the arena is its lower bound, train and eval', async (name) => {
    for (const stage of ['train', 'eval'] as const) {
      const { arenaBytes, lowerBoundBytes } = compileProgram(await sampleGraph(name, stage, 64), WASM_TARGET).memory;
      expect(arenaBytes, stage).toBe(lowerBoundBytes);
    }
  });

  it.each(SAMPLES)('%s train: persistent tensors are updated in place, gradients persist, no copies', async (name) => {
    const p = compileProgram(await sampleGraph(name, 'train', 16), WASM_TARGET);
    expect(p.kernels.map((k) => k.kind)).not.toContain('copy');
    const updated = p.state.filter((s) => s.update !== undefined);
    expect(updated.length).toBe(p.state.length);
    for (const s of updated) {
      const writer = p.kernels.find((k) => k.outputs.some((o) => o.value === s.update))!;
      expect(writer.outputs.find((o) => o.value === s.update)!.offset).toBe(s.slice.offset);
    }
    // Gradients never share their place with anything else.
    const grads = Object.values(p.grads!);
    for (const k of p.kernels) for (const o of k.outputs) for (const g of grads) if (o.offset === g.offset) expect(o.value).toBe(g.value);
  });

  it('random models at batch 2, 16 and 32, for either limit: sound and within 1.10 of the lower bound', () => {
    for (let seed = 0; seed < 100; seed++) {
      const m = randomModel(seed);
      const target = TARGETS[seed % 2]!;
      for (const batch of [2, 16, 32]) {
        const graphs = modelGraphs(m.make, m.input, batch);
        for (const g of [graphs.train, graphs.eval]) {
          const p = compileProgram(g, target);
          expect(verifyProgram(p, target), m.describe).toEqual([]);
          expect(p.memory.arenaBytes, `${m.describe}, batch ${batch}`).toBeLessThanOrEqual(1.1 * p.memory.lowerBoundBytes);
        }
      }
    }
  });

  it('copies a new value when a later kernel still reads the old one', () => {
    // s' = x - s, and a linear layer reads s' with s as its weight: it runs after s' is made and
    // before s may be overwritten.
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [3, 4] });
    const s = b.addState({ name: 's', shape: [3, 4], kind: 'buffer', init: { kind: 'constant', value: 2 } });
    const next = b.op('sub', [x, s]);
    const out = b.op('linear', [next, s]);
    const g: Graph = { stage: 'train', nodes: b.nodes, state: b.state, inputs: { x }, outputs: { logits: out }, updates: { s: next }, grads: {}, batchSize: 3 };
    const p = compileProgram(g, WASM_TARGET);
    expect(p.kernels.at(-1)!.kind).toBe('copy');
    expect(p.state[0]!.update).toBe(p.kernels.at(-1)!.outputs[0]!.value);
    const { feeds, state } = randomFeeds(g, 3);
    expect(runProgram(p, feeds, state)).toEqual(runGraph(g, feeds, state));
  });

  it('writes an elementwise result over an input that dies there', () => {
    const b = new GraphBuilder();
    const x = b.op('input', [], { name: 'x', shape: [2, 1, 8, 8] });
    const w = b.addState({ name: 'w', shape: [4, 1, 3, 3], kind: 'param', init: { kind: 'constant', value: 0.5 } });
    const c = b.op('conv2d', [x, w], { stride: [1, 1], padding: [0, 0] });
    // c is read by the mean and then, last, by the elementwise kernel.
    const m = b.op('batch_mean', [c]);
    const y = b.op('sum', [b.op('neg', [b.op('mul', [c, c])])], { axes: [1, 2, 3], keepdim: false });
    const g: Graph = { stage: 'eval', nodes: b.nodes, state: b.state, inputs: { x }, outputs: { logits: y, mean: m }, updates: {}, grads: {}, batchSize: 2 };
    const p = compileProgram(g, WASM_TARGET);
    const ew = p.kernels.find((k) => k.kind === 'elementwise')!;
    expect(ew.outputs[0]!.offset).toBe(ew.inputs[0]!.offset);
    const { feeds, state } = randomFeeds(g, 4);
    expect(runProgram(p, feeds, state)).toEqual(runGraph(g, feeds, state));
  });
});
