import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../../src/ir/builder.ts';
import type { Attrs, Graph } from '../../../src/ir/graph.ts';
import { allOps } from '../../../src/ir/op.ts';
import { numel, windowOut } from '../../../src/ir/shape.ts';
import { lowerNaive } from '../../../src/passes/lower.ts';
import { executeGraph } from '../../../src/runtime/reference/execute.ts';
import { rng } from '../reference/helpers.ts';
import { PARITY_BACKENDS, parityError, type ParityBackend } from './backends.ts';

// Every op of the op table, one kernel at a time (the naive lowering of a one-op graph), on small
// random inputs, against the reference backend's f32 result. Tolerance 1e-4 (parityError): the
// oracle accumulates in f64 and rounds once; a backend sums in f32 in its own order.

interface Case {
  op: string;
  ins: { shape: number[]; values: (r: ReturnType<typeof rng>, n: number) => number[] }[];
  attrs?: Attrs;
  /** Feeds the step input (dropout, adam_step) as the last operand. */
  step?: number;
  note?: string;
}

const U = (r: ReturnType<typeof rng>, n: number) => r.uniform(n);
const away = (r: ReturnType<typeof rng>, n: number) => r.awayFromZero(n);
const pos = (r: ReturnType<typeof rng>, n: number) => r.uniform(n, 0.1, 1.5);
const distinct = (r: ReturnType<typeof rng>, n: number) => r.distinct(n);
const ties = (r: ReturnType<typeof rng>, n: number) => Array.from({ length: n }, () => r.int(-2, 2));
const labels = (k: number) => (r: ReturnType<typeof rng>, n: number) => Array.from({ length: n }, () => r.int(0, k - 1));
const t = (shape: number[], values = U) => ({ shape, values });

const conv = (x: number[], w: number[], stride: number[], padding: number[]) => {
  const y = [x[0]!, w[0]!, windowOut(x[2]!, w[2]!, stride[0]!, padding[0]!), windowOut(x[3]!, w[3]!, stride[1]!, padding[1]!)];
  return { x, w, y, attrs: { stride, padding } };
};
const c1 = conv([2, 3, 7, 5], [4, 3, 3, 2], [2, 1], [1, 2]);
const c2 = conv([2, 2, 6, 6], [3, 2, 3, 3], [1, 1], [0, 0]);
const pool = (x: number[], kernel: number[], stride: number[], padding: number[]) => ({ x, y: [x[0]!, x[1]!, windowOut(x[2]!, kernel[0]!, stride[0]!, padding[0]!), windowOut(x[3]!, kernel[1]!, stride[1]!, padding[1]!)], attrs: { kernel, stride, padding } });
const p1 = pool([2, 3, 6, 5], [2, 2], [2, 2], [0, 0]);
const p2 = pool([2, 2, 7, 6], [3, 3], [2, 2], [1, 1]);
const p3 = pool([1, 2, 5, 5], [2, 2], [1, 1], [0, 0]);
const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

const CASES: Case[] = [
  { op: 'add', ins: [t([2, 3, 4]), t([3, 1])] },
  { op: 'add', ins: [t([4, 3]), t([])], note: 'scalar operand' },
  { op: 'sub', ins: [t([2, 1]), t([4])] },
  { op: 'mul', ins: [t([3, 4]), t([4])] },
  { op: 'div', ins: [t([2, 3]), t([2, 3], away)] },
  { op: 'neg', ins: [t([5])] },
  { op: 'relu', ins: [t([3, 5], away)] },
  { op: 'relu_grad', ins: [t([3, 5]), t([3, 5], away)] },
  { op: 'axpby', ins: [t([7]), t([7])], attrs: { alpha: 0.9, beta: 0.1 } },
  { op: 'expand', ins: [t([3, 1])], attrs: { shape: [2, 3, 2] } },
  { op: 'reshape', ins: [t([2, 3, 4])], attrs: { shape: [4, 6] } },
  { op: 'sum', ins: [t([2, 3, 4])], attrs: { axes: [1], keepdim: false } },
  { op: 'sum', ins: [t([2, 3, 4])], attrs: { axes: [0, 2], keepdim: true } },
  { op: 'sum', ins: [t([70, 9])], attrs: { axes: [0], keepdim: false }, note: 'long sums: a workgroup per output' },
  { op: 'sum_to', ins: [t([2, 3, 4])], attrs: { shape: [3, 1] } },
  { op: 'sum_to', ins: [t([5, 4])], attrs: { shape: [4] } },
  { op: 'conv2d', ins: [t(c1.x), t(c1.w), t([4])], attrs: c1.attrs },
  { op: 'conv2d', ins: [t(c2.x), t(c2.w)], attrs: c2.attrs },
  { op: 'conv2d_grad_input', ins: [t(c1.y), t(c1.w)], attrs: { ...c1.attrs, shape: c1.x } },
  { op: 'conv2d_grad_input', ins: [t(c2.y), t(c2.w)], attrs: { ...c2.attrs, shape: c2.x } },
  { op: 'conv2d_grad_weight', ins: [t(c1.y), t(c1.x)], attrs: { ...c1.attrs, shape: c1.w } },
  { op: 'conv2d_grad_weight', ins: [t(c2.y), t(c2.x)], attrs: { ...c2.attrs, shape: c2.w } },
  { op: 'max_pool2d', ins: [t(p1.x, distinct)], attrs: p1.attrs },
  { op: 'max_pool2d', ins: [t(p2.x, distinct)], attrs: p2.attrs },
  { op: 'max_pool2d', ins: [t(p3.x, ties)], attrs: p3.attrs, note: 'ties: the first maximum' },
  { op: 'max_pool2d_grad', ins: [t(p1.y), t(p1.x, distinct)], attrs: p1.attrs },
  { op: 'max_pool2d_grad', ins: [t(p2.y), t(p2.x, distinct)], attrs: p2.attrs },
  { op: 'max_pool2d_grad', ins: [t(p3.y), t(p3.x, ties)], attrs: p3.attrs, note: 'ties and overlapping windows' },
  { op: 'avg_pool2d', ins: [t(p1.x)], attrs: p1.attrs },
  { op: 'avg_pool2d', ins: [t(p2.x)], attrs: p2.attrs },
  { op: 'avg_pool2d_grad', ins: [t(p2.y)], attrs: { ...p2.attrs, shape: p2.x } },
  { op: 'avg_pool2d_grad', ins: [t(p3.y)], attrs: { ...p3.attrs, shape: p3.x } },
  { op: 'linear', ins: [t([3, 5]), t([4, 5]), t([4])] },
  { op: 'linear', ins: [t([2, 300]), t([3, 300])], note: 'long dot products' },
  ...[false, true].flatMap((transA) =>
    [false, true].map((transB): Case => ({ op: 'matmul', ins: [t(transA ? [5, 3] : [3, 5]), t(transB ? [4, 5] : [5, 4])], attrs: { transA, transB } })),
  ),
  { op: 'dropout', ins: [t([4, 50])], attrs: { p: 0.3, stream: 1 }, step: 5 },
  { op: 'dropout', ins: [t([3, 7])], attrs: { p: 0.2, stream: 0 }, step: 0 },
  { op: 'batch_mean', ins: [t([4, 3, 2, 2])] },
  { op: 'batch_mean', ins: [t([6, 5])] },
  { op: 'batch_var', ins: [t([4, 3, 2, 2]), t([3])] },
  { op: 'batch_var_grad', ins: [t([3]), t([4, 3, 2, 2]), t([3])] },
  { op: 'batch_norm', ins: [t([4, 3, 2, 2]), t([3]), t([3], pos), t([3]), t([3])], attrs: { eps: 1e-5 } },
  { op: 'batch_norm', ins: [t([6, 5]), t([5]), t([5], pos), t([5]), t([5])], attrs: { eps: 1e-5 } },
  ...['x', 'mean', 'var', 'gamma'].map((wrt): Case => ({ op: 'batch_norm_grad', ins: [t([4, 3, 2, 2]), t([4, 3, 2, 2]), t([3]), t([3], pos), t([3])], attrs: { eps: 1e-5, wrt } })),
  { op: 'batch_norm_grad', ins: [t([6, 5]), t([6, 5]), t([5]), t([5], pos), t([5])], attrs: { eps: 1e-5, wrt: 'var' } },
  { op: 'log_softmax', ins: [t([3, 5])], attrs: { dim: 1 } },
  { op: 'log_softmax', ins: [t([4, 3, 2])], attrs: { dim: 1 } },
  { op: 'log_softmax_grad', ins: [t([3, 5]), t([3, 5], (r, n) => r.uniform(n, -3, -0.5))], attrs: { dim: 1 } },
  { op: 'softmax', ins: [t([4, 3, 2])], attrs: { dim: 0 } },
  { op: 'softmax_grad', ins: [t([3, 5]), t([3, 5], (r, n) => r.uniform(n, 0, 1))], attrs: { dim: 1 } },
  { op: 'cross_entropy', ins: [t([5, 4], (r, n) => r.uniform(n, -3, 3)), t([5], labels(4))] },
  { op: 'cross_entropy', ins: [t([70, 3], (r, n) => r.uniform(n, -3, 3)), t([70], labels(3))], note: 'a workgroup sums the rows' },
  { op: 'cross_entropy_grad', ins: [t([], () => [1.5]), t([5, 4], (r, n) => r.uniform(n, -3, 3)), t([5], labels(4))] },
  { op: 'adam_step', ins: [t([3, 4]), t([3, 4]), t([3, 4], (r, n) => r.uniform(n, 0, 0.01))], attrs: adam, step: 0 },
  { op: 'adam_step', ins: [t([9]), t([9]), t([9], (r, n) => r.uniform(n, 0, 0.01))], attrs: { ...adam, lr: 0.01 }, step: 41 },
];

/** The one-op graph: operands are persistent tensors (so the Program places them), the step an input. */
function oneOp(c: Case): { graph: Graph; y: number } {
  const b = new GraphBuilder();
  const ins = c.ins.map((x, k) => b.addState({ name: `in${k}`, shape: x.shape, kind: 'param', init: { kind: 'constant', value: 0 } }));
  const step = c.step === undefined ? undefined : b.op('input', [], { name: 'step', shape: [] });
  const y = b.op(c.op, step === undefined ? ins : [...ins, step], c.attrs ?? {});
  const graph: Graph = { stage: 'train', nodes: b.nodes, state: b.state, inputs: step === undefined ? {} : { step }, outputs: { y }, updates: {}, grads: {}, batchSize: 1 };
  return { graph, y };
}

const SEED = 11;

for (const make of PARITY_BACKENDS) {
  describe('op parity', async () => {
    const backend: ParityBackend = await make();
    let why: string | undefined;
    beforeAll(async () => {
      why = await backend.unavailable();
    });
    afterAll(() => backend.close());

    it(`${backend.name}: the cases cover every op of the op table`, () => {
      const leaves = new Set(['input', 'param', 'const']);
      const covered = new Set(CASES.map((c) => c.op));
      expect(allOps().filter((o) => !leaves.has(o.name) && !covered.has(o.name)).map((o) => o.name)).toEqual([]);
    });

    it.each(CASES.map((c, i) => [`${c.op} ${c.ins.map((x) => `[${x.shape}]`).join(' ')}${c.note ? ` (${c.note})` : ''}`, i] as const))(`${backend.name}: %s`, async (_, i) => {
      if (why) return void console.warn(`skipped: ${why}`);
      const c = CASES[i]!;
      const r = rng(100 + i);
      const { graph, y } = oneOp(c);
      const values = c.ins.map((x) => Float32Array.from(x.values(r, numel(x.shape))));
      const state = Object.fromEntries(values.map((v, k) => [`in${k}`, v]));
      const feeds: Record<string, number[]> = c.step === undefined ? {} : { step: [c.step] };
      const want = executeGraph(graph, feeds, state, { seed: SEED })[y]!;
      const program = lowerNaive(graph);
      const programFeeds = program.state.map((s) => ({ offset: s.slice.offset, data: state[s.name]! }));
      const [got] = await backend.runProgram(program, programFeeds, [program.outputs.y!], { seed: SEED, step: c.step });
      const { error, at } = parityError(got!, want);
      expect(error, `element ${at}: ${got![at]} vs ${want[at]}`).toBeLessThanOrEqual(1e-4);
    });
  });
}
