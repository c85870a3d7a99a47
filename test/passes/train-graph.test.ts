import { describe, expect, it } from 'vitest';
import { Module, nn, type Tensor } from '../../src/frontend/api.ts';
import { trace } from '../../src/frontend/trace.ts';
import { resolveOptimizer, type OptimizerOptions } from '../../src/frontend/training-options.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { numel } from '../../src/ir/shape.ts';
import { buildTrainGraph } from '../../src/passes/train-graph.ts';
import { executeGraph } from '../../src/runtime/reference/execute.ts';

// A tiny conv net: conv 1->2 (2x2) + ReLU + flatten + linear 8->3, batch 2, 3x3 images.
function tinyGraph(opt: OptimizerOptions): Graph {
  const model = new nn.Sequential(new nn.Conv2d(1, 2, 2), new nn.ReLU(), new nn.Flatten(), new nn.Linear(8, 3));
  const traced = trace(model, { input: [1, 3, 3], batchSize: 2, mode: 'train' });
  return buildTrainGraph(traced, resolveOptimizer(opt, (m) => { throw new Error(m); }));
}

const x = [0.5, -1, 2, 0.25, 1.5, -0.5, 1, 0.75, -2, -0.3, 0.8, 1.1, -1.4, 0.6, 0.2, 0.9, -0.7, 1.3];
const labels = [2, 0];

function initialState(g: Graph): Map<string, Float64Array> {
  const s = new Map<string, Float64Array>();
  g.state.forEach((t, k) => s.set(t.name, Float64Array.from({ length: numel(t.shape) }, (_, i) => (t.kind === 'optim' ? 0 : Math.sin(7 * k + 3 * i + 1) * 0.6))));
  return s;
}

function run(g: Graph, state: Map<string, Float64Array>, step: number) {
  const v = executeGraph(g, { x, labels, step: [step] }, state, { dtype: 'f64' });
  const next = new Map(state);
  for (const [name, node] of Object.entries(g.updates)) next.set(name, v[node] as Float64Array);
  return { loss: v[g.outputs.loss!]![0]!, next };
}

/** dL/dp by central differences of the loss alone: independent of the autodiff under test. */
function fdGrads(g: Graph, state: Map<string, Float64Array>): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const t of g.state.filter((s) => s.kind === 'param')) {
    const p = state.get(t.name)!;
    out.set(t.name, Float64Array.from(p, (_, i) => {
      const probe = (d: number) => {
        const q = Float64Array.from(p);
        q[i]! += d;
        return run(g, new Map(state).set(t.name, q), 0).loss;
      };
      return (probe(1e-6) - probe(-1e-6)) / 2e-6;
    }));
  }
  return out;
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  // FD gradients carry ~1e-9 error; an optimizer step scales it by lr (Adam: divides by |g| + eps).
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-7 + 1e-6 * Math.abs(b[i]!));
};

describe('one optimizer step of a tiny conv net matches hand-derived updates', () => {
  it('SGD with momentum, Nesterov and weight decay (torch.optim.SGD, first step: buf = g)', () => {
    const [lr, mu, wd] = [0.1, 0.9, 0.01];
    const g = tinyGraph({ type: 'sgd', lr, momentum: mu, nesterov: true, weightDecay: wd });
    const s0 = initialState(g);
    const grads = fdGrads(g, s0);
    const { next } = run(g, s0, 0);
    for (const [name, gr] of grads) {
      const p = s0.get(name)!;
      const d = gr.map((gi, i) => gi + wd * p[i]!);
      close(next.get(`${name}.momentum_buffer`)!, d);
      close(next.get(name)!, p.map((pi, i) => pi - lr * (d[i]! + mu * d[i]!)));
    }
  });

  it('Adam, two steps (bias correction with t = 1, 2)', () => {
    const [lr, b1, b2, eps] = [0.01, 0.9, 0.999, 1e-8];
    const g = tinyGraph({ type: 'adam', lr });
    const s0 = initialState(g);
    const g1 = fdGrads(g, s0);
    const { next: s1 } = run(g, s0, 0);
    for (const [name, gr] of g1) {
      // Step 1: m̂ = g and v̂ = g², so every weight moves by lr·g/(|g| + eps).
      close(s1.get(name)!, s0.get(name)!.map((p, i) => p - (lr * gr[i]!) / (Math.abs(gr[i]!) + eps)));
    }
    const g2 = fdGrads(g, s1);
    const { next: s2 } = run(g, s1, 1);
    for (const [name, gr] of g2) {
      const m = g1.get(name)!.map((a, i) => b1 * (1 - b1) * a + (1 - b1) * gr[i]!);
      const v = g1.get(name)!.map((a, i) => b2 * (1 - b2) * a * a + (1 - b2) * gr[i]! ** 2);
      const expected = s1.get(name)!.map((p, i) => p - (lr / (1 - b1 ** 2)) * m[i]! / (Math.sqrt(v[i]! / (1 - b2 ** 2)) + eps));
      close(s2.get(`${name}.exp_avg`)!, m);
      close(s2.get(name)!, expected);
    }
  });

  it('AdamW decays the weights before the Adam step', () => {
    const [lr, wd] = [0.01, 0.1];
    const g = tinyGraph({ type: 'adamw', lr, weightDecay: wd });
    const s0 = initialState(g);
    const grads = fdGrads(g, s0);
    const { next } = run(g, s0, 0);
    for (const [name, gr] of grads) close(next.get(name)!, s0.get(name)!.map((p, i) => p * (1 - lr * wd) - (lr * gr[i]!) / (Math.abs(gr[i]!) + 1e-8)));
  });
});

describe('a label per row of the logits', () => {
  // A language model's shape: x [B, T] → logits [B·T, V], PyTorch's logits.view(-1, V).
  class PerPosition extends Module {
    fc = new nn.Linear(1, 4);
    forward(t: Tensor): Tensor {
      return this.fc.forward(t.view(-1, 1));
    }
  }

  it('makes the labels input [B·T], and the loss the mean cross-entropy over every position', () => {
    const g = buildTrainGraph(trace(new PerPosition(), { input: [3], batchSize: 2, mode: 'train' }), resolveOptimizer({ type: 'sgd' }, (m) => { throw new Error(m); }));
    expect(g.nodes[g.inputs.labels!]!.shape).toEqual([6]);
    const xs = [0, 1, 2, 3, 1, 0];
    const ys = [1, 2, 3, 0, 0, 1];
    const state = initialState(g);
    const v = executeGraph(g, { x: xs, labels: ys, step: [0] }, state, { dtype: 'f64' });
    const w = state.get('fc.weight')!;
    const b = state.get('fc.bias')!;
    let sum = 0;
    xs.forEach((xi, r) => {
      const logits = [0, 1, 2, 3].map((k) => w[k]! * xi + b[k]!);
      sum += Math.log(logits.reduce((a, l) => a + Math.exp(l), 0)) - logits[ys[r]!]!;
    });
    expect(v[g.outputs.loss!]![0]).toBeCloseTo(sum / 6, 12);
  });
});
