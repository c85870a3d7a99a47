import { expect, it } from 'vitest';
import { GraphBuilder } from '../../../src/ir/builder.ts';
import type { Graph } from '../../../src/ir/graph.ts';
import '../../../src/ir/ops/index.ts';
import { memoizeSteps } from '../../../src/runtime/backend.ts';
import { createWasmBackend } from '../../../src/runtime/wasm/compile.ts';
import { rng } from '../reference/helpers.ts';

// The embedding weight gradient is a scatter-add; kiln makes it a per-row gather so that seeds
// reproduce: the same bits on any thread count. Many positions share few ids here, so a sum taken
// in another order would differ in its last bits.

const [N, V, D] = [512, 37, 41];

function step(stage: 'train' | 'eval'): Graph {
  const b = new GraphBuilder();
  const g = b.addState({ name: 'g', shape: [N, D], kind: 'param', init: { kind: 'constant', value: 0 } });
  const ids = b.addState({ name: 'ids', shape: [N], kind: 'param', init: { kind: 'constant', value: 0 } });
  const x = b.op('input', [], { name: 'x', shape: [1, 1] });
  const s = b.op('input', [], { name: 'step', shape: [] });
  const dw = b.op('embedding_grad', [g, ids], { num: V });
  const logits = b.op('reshape', [dw], { shape: [1, V * D] });
  const labels = b.op('input', [], { name: 'labels', shape: [1] });
  const loss = b.op('cross_entropy', [logits, labels]);
  return { stage, nodes: b.nodes, state: b.state, inputs: { x, labels, step: s }, outputs: { logits, loss }, updates: {}, grads: {}, batchSize: 1 };
}

it('embedding_grad on wasm gives the same bits on 1, 2, 3 and 4 threads', async () => {
  const r = rng(77);
  const initial = new Map([
    ['g', Float32Array.from(r.uniform(N * D, -1, 1).map((v) => v * 10 ** r.int(-3, 3)))],
    ['ids', Float32Array.from({ length: N }, () => r.int(0, 5) * 7)],
  ]);
  const steps = memoizeSteps({ train: () => step('train'), eval: () => step('eval') });
  const run = async (threads: number) => {
    const b = await createWasmBackend(steps, initial, 1, 0, { threads });
    const logits = Array.from(b.trainStep(new Float32Array(1), new Float32Array(1), 0).logits);
    b.dispose();
    return logits;
  };
  const one = await run(1);
  expect(one.some((v) => v !== 0)).toBe(true);
  for (const t of [2, 3, 4]) expect(await run(t)).toEqual(one);
});
