import { expect, it } from 'vitest';
import { Module, nn, type Tensor } from '../../../src/frontend/api.ts';
import type { Graph } from '../../../src/ir/graph.ts';
import type { Program } from '../../../src/ir/program.ts';
import type { Target } from '../../../src/ir/target.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { memoizeSteps, runTrainStep, syncState } from '../../../src/runtime/backend.ts';
import { initialState } from '../../../src/runtime/init.ts';
import { ReferenceBackend } from '../../../src/runtime/reference/backend.ts';
import { executeGraph } from '../../../src/runtime/reference/execute.ts';
import { lowerNaive } from '../../passes/lower-naive.ts';
import { modelGraphs } from '../../passes/helpers.ts';
import { rng } from '../reference/helpers.ts';
import { describeEachBackend, parityError, peak } from './backends.ts';

// A transformer-shaped model of the GPT layers (token embedding, pre-norm MLP block with a
// residual, final layer norm, Linear on [B, T, C]) trained a step on each backend, compiled by the
// full pipeline (fused, planned) and one op per kernel, against the reference backend. The input
// is token ids, two of them outside the vocabulary (a zero row, no gradient). SGD, so the change
// of every parameter is lr times its gradient: comparing the changes compares the gradients,
// each element allowed ten times the oracle's own rounding spread (its f32 change against the
// same step in f64) beyond the 1e-4, as steps.test.ts allows: after a step of lr 0.5 some
// gradient elements cancel to a few bits.

const [B, T, V, C] = [4, 5, 11, 8];

class TinyLM extends Module {
  tok = new nn.Embedding(V, C);
  ln1 = new nn.LayerNorm(C);
  fc = new nn.Linear(C, 2 * C);
  act = new nn.GELU({ approximate: 'tanh' });
  proj = new nn.Linear(2 * C, C);
  lnF = new nn.LayerNorm(C);
  head = new nn.Linear(C, 3);

  override forward(ids: Tensor): Tensor {
    let x = this.tok.forward(ids);
    x = x.add(this.proj.forward(this.act.forward(this.fc.forward(this.ln1.forward(x)))));
    return this.head.forward(this.lnF.forward(x)).mean(1);
  }
}

const LOWERINGS: [string, (g: Graph, target: Target) => Program][] = [
  ['planned', compileProgram],
  ['one op per kernel', lowerNaive],
];

describeEachBackend('a tiny language model of the GPT layers', (backend, skipped) => {
  it.each(LOWERINGS)(`${backend.name}: %s`, async (_, lower) => {
    if (skipped()) return;
    const graphs = modelGraphs(() => new TinyLM(), [T], B, { type: 'sgd', lr: 0.5 });
    const steps = memoizeSteps({ train: () => graphs.train, eval: () => graphs.eval });
    const init = initialState(graphs.train.state, 3);
    const r = rng(9);
    const ids = Float32Array.from({ length: B * T }, (_, i) => (i === 3 ? V : i === 17 ? -1 : r.int(0, 3)));
    const labels = Float32Array.from({ length: B }, () => r.int(0, 2));
    const ref = new ReferenceBackend(steps, init, B, 3);
    const dut = await backend.open(steps, init, B, 3, lower);
    const failures: string[] = [];
    for (let s = 0; s < 2; s++) {
      const before = new Map([...ref.stateShapes.keys()].map((n) => [n, ref.getState(n)]));
      const v64 = executeGraph(graphs.train, { x: ids, labels, step: [s] }, before, { dtype: 'f64', seed: 3 });
      const want = ref.trainStep(ids, labels, s);
      const got = await runTrainStep(dut, ids, labels, s);
      await syncState(dut);
      for (const [what, g, w] of [['loss', [got.loss], [want.loss]], ['logits', got.logits, want.logits]] as const) {
        const { error, at } = parityError(g, w);
        if (!(error <= 1e-4)) failures.push(`step ${s} ${what}: error ${error.toExponential(2)} at ${at}`);
      }
      for (const name of ref.stateShapes.keys()) {
        const [a, b, was] = [dut.getState(name), ref.getState(name), before.get(name)!];
        const want = b.map((v, i) => v - was[i]!);
        const exact = v64[graphs.train.updates[name]!]!;
        const spread = Float64Array.from(want, (v, i) => Math.abs(v - (exact[i]! - was[i]!)));
        // The f64 step is the same step: its changes agree with the f32 oracle's to rounding.
        if (!(peak(spread) <= 1e-4 * peak(want))) failures.push(`step ${s} ${name}: the f64 oracle differs by ${peak(spread)}`);
        const { error, at } = parityError(a.map((v, i) => v - was[i]!), want, { spread });
        if (!(error <= 1e-4)) failures.push(`step ${s} ${name} change: error ${error.toExponential(2)} at ${at}`);
        dut.setState(name, b);
      }
    }
    dut.dispose();
    expect(failures).toEqual([]);
  });
});
