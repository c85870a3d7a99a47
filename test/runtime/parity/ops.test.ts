import { expect, it } from 'vitest';
import { F } from '../../../src/frontend/api.ts';
import type { Tensor } from '../../../src/frontend/tensor.ts';
import { Tracer, withTracer } from '../../../src/frontend/tracer.ts';
import { GraphBuilder } from '../../../src/ir/builder.ts';
import { differentiate } from '../../../src/passes/autodiff.ts';
import type { Attrs, Graph } from '../../../src/ir/graph.ts';
import '../../../src/ir/ops/index.ts';
import { numel } from '../../../src/ir/shape.ts';
import { lowerNaive } from '../../passes/lower-naive.ts';
import { memoizeSteps, runTrainStep, type StepSource } from '../../../src/runtime/backend.ts';
import { ReferenceBackend } from '../../../src/runtime/reference/backend.ts';
import { rng } from '../reference/helpers.ts';
import { describeEachBackend } from './backends.ts';

// Every op alone, as its own plain kernel (one op per kernel: the naive lowering), on small random
// shapes that hit the scalar tails (sizes that are not multiples of 4, odd channel counts, stride
// 2, padding), plus shapes large enough to be split across threads, against the reference
// backend. The fused kernels are kernels.test.ts's; whole steps, steps.test.ts's.
//
// Tolerance: 1e-4 relative, normwise: max |ours - reference| <= 1e-4 · max |reference| per
// tensor. The reference accumulates in f64 and rounds once; an f32 backend sums in another order,
// so elements near zero can differ in their own leading digits while the tensor agrees to ~1e-6.

const TOL = 1e-4;

/** max |a - b| / max |b|: the normwise relative error. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}

interface OpCase {
  name: string;
  op: string;
  ins: { shape: number[]; values: number[] }[];
  attrs?: Attrs;
  /** Instead of the op alone: the graph this builds on the operands' nodes. */
  build?: (b: GraphBuilder, ins: number[]) => number;
}

/**
 * A layer the frontend composes from ops (`f`, traced on the first operands), or with `wrt` the
 * gradient wrt operand `wrt` of Σ f(...)·w, w the last operand: its backward graph, as autodiff
 * makes it, run op by op.
 */
function layerCase(name: string, ins: OpCase['ins'], f: (t: Tensor[]) => Tensor, wrt?: number): OpCase {
  const build = (b: GraphBuilder, nodes: number[]) => {
    const tracer = new Tracer('train', b);
    const y = withTracer(tracer, () => f(nodes.slice(0, -1).map((n) => tracer.wrap(n)))).node;
    if (wrt === undefined) return y;
    const shape = b.node(y).shape;
    const loss = b.op('sum', [b.op('mul', [y, nodes[nodes.length - 1]!])], { axes: shape.map((_, i) => i), keepdim: false });
    return differentiate(b, loss, [nodes[wrt]!]).get(nodes[wrt]!)!;
  };
  return { name: wrt === undefined ? name : `${name}, d/d operand ${wrt}`, op: name, ins, build };
}

/**
 * A one-op step: the operands are persistent tensors (set with setState), the op's output viewed
 * as logits [1, n] is what the step returns, and the loss is cross-entropy against label 0 (every
 * backend's eval interface wants one).
 */
function opSteps(c: OpCase): StepSource {
  const build = (stage: 'train' | 'eval'): Graph => {
    const b = new GraphBuilder();
    const ins = c.ins.map((x, k) => b.addState({ name: `in${k}`, shape: x.shape, kind: 'param', init: { kind: 'constant', value: 0 } }));
    const x = b.op('input', [], { name: 'x', shape: [1, 1] });
    const step = b.op('input', [], { name: 'step', shape: [] });
    const y = c.build ? c.build(b, ins) : b.op(c.op, ins, c.attrs ?? {});
    const logits = b.op('reshape', [y], { shape: [1, Math.max(1, numel(b.node(y).shape))] });
    const labels = b.op('input', [], { name: 'labels', shape: [1] });
    const loss = b.op('cross_entropy', [logits, labels]);
    return { stage, nodes: b.nodes, state: b.state, inputs: { x, labels, step }, outputs: { logits, loss }, updates: {}, grads: {}, batchSize: 1 };
  };
  return memoizeSteps({ train: () => build('train'), eval: () => build('eval') });
}

function opCases(): OpCase[] {
  const r = rng(5150);
  const rand = (shape: number[]) => ({ shape, values: r.uniform(numel(shape)) });
  const away = (shape: number[]) => ({ shape, values: r.awayFromZero(numel(shape)) });
  const distinct = (shape: number[]) => ({ shape, values: r.distinct(numel(shape)) });
  const out: OpCase[] = [];
  const add = (c: OpCase) => out.push(c);

  // Elementwise, with every broadcasting pattern and lengths 1..7 past a multiple of 4.
  const pairs: [number[], number[]][] = [
    [[13], [13]],
    [[2, 3, 5], [3, 1]],
    [[7], []],
    [[], [6]],
    [[2, 1, 5], [4, 1]],
    [[3, 4, 1, 7], [1, 4, 5, 1]],
    [[6, 35], [35]],
    [[70, 300], [70, 1]],
    [[33, 517], [33, 517]],
  ];
  for (const op of ['add', 'sub', 'mul', 'div'])
    for (const [a, b2] of pairs) add({ name: `${op} [${a}] [${b2}]`, op, ins: [rand(a), op === 'div' ? away(b2) : rand(b2)] });
  for (const n of [1, 2, 3, 5, 13, 33, 20001]) {
    add({ name: `neg [${n}]`, op: 'neg', ins: [rand([n])] });
    add({ name: `sqrt [${n}]`, op: 'sqrt', ins: [{ shape: [n], values: r.uniform(n, 0, 3) }] });
    add({ name: `relu [${n}]`, op: 'relu', ins: [away([n])] });
    add({ name: `relu_grad [${n}]`, op: 'relu_grad', ins: [rand([n]), away([n])] });
    add({ name: `axpby [${n}]`, op: 'axpby', ins: [rand([n]), rand([n])], attrs: { alpha: 0.9, beta: 0.1 } });
  }
  add({ name: 'expand [3,1] -> [2,3,7]', op: 'expand', ins: [rand([3, 1])], attrs: { shape: [2, 3, 7] } });
  add({ name: 'expand [5] -> [4,9,5]', op: 'expand', ins: [rand([5])], attrs: { shape: [4, 9, 5] } });

  // Index constants: each axis of odd shapes, one large enough for threads.
  for (const [shape, dim] of [
    [[5], 0],
    [[3, 7], 0],
    [[3, 7], 1],
    [[2, 3, 5, 6], 2],
    [[64, 301], 1],
  ] as const)
    add({ name: `iota [${shape}] dim ${dim}`, op: 'iota', ins: [], attrs: { shape: [...shape], dim } });

  // Reductions: inner axis summed, inner axis kept, several axes, all axes, big enough to split.
  const sums: [number[], number[], boolean][] = [
    [[2, 3, 5], [1], false],
    [[2, 3, 5], [0, 2], false],
    [[2, 3, 5], [2], true],
    [[2, 3, 5], [0, 1, 2], false],
    [[13, 10], [0], false],
    [[7, 3, 9, 11], [0, 2, 3], false],
    [[9, 33, 27, 29], [0, 2, 3], false],
    [[300, 70], [0], false],
    [[70, 301], [1], false],
  ];
  for (const [s, axes, keepdim] of sums) add({ name: `sum [${s}] axes [${axes}]${keepdim ? ' keepdim' : ''}`, op: 'sum', ins: [rand(s)], attrs: { axes, keepdim } });
  add({ name: 'sum_to [4,3,5] -> [3,1]', op: 'sum_to', ins: [rand([4, 3, 5])], attrs: { shape: [3, 1] } });
  add({ name: 'sum_to [6,7] -> [7]', op: 'sum_to', ins: [rand([6, 7])], attrs: { shape: [7] } });

  // Convolutions: odd sizes, stride 1/2 (and unequal), padding 0/1/2 (and unequal), with and
  // without bias, 1..5 channels; the last ones big enough for threads.
  const convs: [number[], number[], number[], number[], boolean][] = [
    // x, w, stride, padding, bias
    [[2, 1, 7, 9], [3, 1, 3, 3], [1, 1], [0, 0], true],
    [[1, 3, 7, 5], [5, 3, 3, 2], [1, 1], [1, 1], false],
    [[2, 2, 9, 7], [3, 2, 3, 3], [2, 2], [0, 0], true],
    [[1, 3, 8, 6], [2, 3, 3, 3], [2, 2], [1, 1], false],
    [[2, 2, 7, 5], [3, 2, 3, 2], [1, 2], [2, 2], true],
    [[1, 1, 6, 7], [4, 1, 2, 3], [2, 1], [2, 1], false],
    [[3, 1, 28, 28], [6, 1, 5, 5], [1, 1], [2, 2], true],
    [[4, 1, 28, 28], [32, 1, 3, 3], [1, 1], [0, 0], true],
    [[4, 6, 14, 14], [16, 6, 5, 5], [1, 1], [0, 0], true],
    [[5, 3, 11, 13], [7, 3, 3, 3], [3, 3], [1, 1], true],
  ];
  for (const [xs, ws, stride, padding, bias] of convs) {
    const desc = `x[${xs}] w[${ws}] stride ${stride} padding ${padding}`;
    const ho = Math.floor((xs[2]! + 2 * padding[0]! - ws[2]!) / stride[0]!) + 1;
    const wo = Math.floor((xs[3]! + 2 * padding[1]! - ws[3]!) / stride[1]!) + 1;
    const gs = [xs[0]!, ws[0]!, ho, wo];
    add({ name: `conv2d ${desc}${bias ? ' +bias' : ''}`, op: 'conv2d', ins: [rand(xs), rand(ws), ...(bias ? [rand([ws[0]!])] : [])], attrs: { stride, padding } });
    add({ name: `conv2d_grad_input ${desc}`, op: 'conv2d_grad_input', ins: [rand(gs), rand(ws)], attrs: { stride, padding, shape: xs } });
    add({ name: `conv2d_grad_weight ${desc}`, op: 'conv2d_grad_weight', ins: [rand(gs), rand(xs)], attrs: { stride, padding, shape: ws } });
  }

  // Pooling: the 2×2/2 fast paths with odd sizes, overlapping and padded windows, ties.
  const pools: [number[], number[], number[], number[]][] = [
    // x, kernel, stride, padding
    [[2, 3, 8, 8], [2, 2], [2, 2], [0, 0]],
    [[1, 3, 7, 9], [2, 2], [2, 2], [0, 0]],
    [[2, 2, 5, 26], [2, 2], [2, 2], [0, 0]],
    [[1, 2, 7, 6], [3, 3], [2, 2], [1, 1]],
    [[1, 2, 6, 5], [2, 2], [1, 1], [0, 0]],
    [[2, 1, 7, 7], [3, 2], [2, 1], [1, 0]],
    [[8, 32, 26, 26], [2, 2], [2, 2], [0, 0]],
  ];
  for (const [xs, kernel, stride, padding] of pools) {
    const attrs = { kernel, stride, padding };
    const ho = Math.floor((xs[2]! + 2 * padding[0]! - kernel[0]!) / stride[0]!) + 1;
    const wo = Math.floor((xs[3]! + 2 * padding[1]! - kernel[1]!) / stride[1]!) + 1;
    const gs = [xs[0]!, xs[1]!, ho, wo];
    const desc = `x[${xs}] kernel ${kernel} stride ${stride} padding ${padding}`;
    add({ name: `max_pool2d ${desc}`, op: 'max_pool2d', ins: [distinct(xs)], attrs });
    add({ name: `max_pool2d_grad ${desc}`, op: 'max_pool2d_grad', ins: [rand(gs), distinct(xs)], attrs });
    add({ name: `avg_pool2d ${desc}`, op: 'avg_pool2d', ins: [rand(xs)], attrs });
    add({ name: `avg_pool2d_grad ${desc}`, op: 'avg_pool2d_grad', ins: [rand(gs)], attrs: { ...attrs, shape: xs } });
  }
  // Adaptive average pooling: global (a long plane split across threads, planes of odd length),
  // dividing bins, overlapping bins of unequal size, more bins than rows.
  for (const [xs, size] of [
    [[2, 3, 8, 8], [1, 1]],
    [[3, 5, 7, 5], [1, 1]],
    [[64, 32, 8, 8], [1, 1]],
    [[2, 3, 8, 6], [2, 3]],
    [[2, 2, 5, 7], [3, 4]],
    [[1, 2, 3, 4], [5, 6]],
  ] as const) {
    const desc = `x[${xs}] size ${size}`;
    add({ name: `adaptive_avg_pool2d ${desc}`, op: 'adaptive_avg_pool2d', ins: [rand([...xs])], attrs: { size: [...size] } });
    add({ name: `adaptive_avg_pool2d_grad ${desc}`, op: 'adaptive_avg_pool2d_grad', ins: [rand([xs[0], xs[1], ...size])], attrs: { shape: [...xs] } });
  }
  // Ties: every window's maximum appears twice or more; the gradient goes to the first.
  const tied = { shape: [1, 2, 6, 9], values: Array.from({ length: 108 }, (_, i) => Math.floor(i / 3) % 4) };
  add({ name: 'max_pool2d_grad ties, 2×2/2', op: 'max_pool2d_grad', ins: [rand([1, 2, 3, 4]), tied], attrs: { kernel: [2, 2], stride: [2, 2], padding: [0, 0] } });
  add({ name: 'max_pool2d_grad ties, 3×3/2 padded', op: 'max_pool2d_grad', ins: [rand([1, 2, 3, 5]), tied], attrs: { kernel: [3, 3], stride: [2, 2], padding: [1, 1] } });

  // Dense layers: every transpose, odd M, N, K; the linear shapes of the samples; products large
  // enough for the wasm gemm to pack its operands (B whole, or A and B per block of k, the last
  // block short, few rows split by columns), with partial tiles at every edge.
  for (const [m, n, k] of [
    [9, 19, 700],
    [5, 7, 9],
    [13, 6, 11],
    [1, 1, 3],
    [64, 10, 301],
    [10, 301, 64],
    [260, 37, 300],
    [13, 45, 3000],
  ] as const) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const as = ta ? [k, m] : [m, k];
      const bs = tb ? [n, k] : [k, n];
      add({ name: `matmul ${m}×${n}×${k} transA ${ta} transB ${tb}`, op: 'matmul', ins: [rand(as), rand(bs)], attrs: { transA: ta, transB: tb } });
    }
  }
  // Batched products (torch.matmul): equal batches, broadcast batch axes on either side, a 2-d
  // operand against a batch, transposes, and enough batch elements to be shared out to threads.
  for (const [as, bs, ta, tb] of [
    [[3, 5, 7], [3, 7, 6], false, false],
    [[2, 3, 4, 5], [2, 3, 5, 9], false, false],
    [[2, 1, 4, 5], [1, 3, 5, 6], false, false],
    [[4, 6, 5], [5, 3], false, false],
    [[6, 5], [4, 5, 3], false, false],
    [[2, 3, 5, 4], [2, 3, 6, 5], true, true],
    [[2, 3, 4, 5], [2, 3, 6, 5], false, true],
    [[2, 3, 5, 4], [1, 5, 6], true, false],
    [[64, 16, 16], [64, 16, 16], false, true],
    [[8, 4, 33, 16], [8, 4, 33, 16], true, false],
  ] as const)
    add({ name: `matmul [${as}] [${bs}] transA ${ta} transB ${tb}`, op: 'matmul', ins: [rand([...as]), rand([...bs])], attrs: { transA: ta, transB: tb } });

  // Layout copies: a permute keeping the last axis (contiguous runs), moving it (tiled), the
  // attention heads' transposes, size-1 axes; slices and pads along every kind of axis.
  for (const [xs, dims] of [
    [[2, 3, 5], [1, 0, 2]],
    [[2, 3, 5], [2, 0, 1]],
    [[7, 13], [1, 0]],
    [[4, 9, 3, 6], [0, 2, 1, 3]],
    [[4, 9, 3, 6], [0, 2, 3, 1]],
    [[3, 1, 5, 2], [3, 2, 1, 0]],
    [[33, 17, 40], [2, 1, 0]],
    [[64, 40, 70], [0, 2, 1]],
  ] as const)
    add({ name: `permute [${xs}] dims [${dims}]`, op: 'permute', ins: [rand([...xs])], attrs: { dims: [...dims] } });
  for (const [xs, dim, start, end] of [
    [[4, 9, 6], 0, 1, 3],
    [[4, 9, 6], 1, 3, 9],
    [[4, 9, 6], 2, 0, 5],
    [[13], 0, 4, 11],
    [[64, 3, 300], 2, 100, 200],
  ] as const) {
    add({ name: `slice [${xs}] dim ${dim} [${start}, ${end})`, op: 'slice', ins: [rand([...xs])], attrs: { dim, start, end } });
    const gs = xs.map((n, k) => (k === dim ? end - start : n));
    add({ name: `pad [${gs}] dim ${dim} before ${start} after ${xs[dim]! - end}`, op: 'pad', ins: [rand(gs)], attrs: { dim, before: start, after: xs[dim]! - end } });
  }
  for (const [n, i, o, bias] of [
    [3, 7, 5, true],
    [13, 33, 10, false],
    [64, 845, 13, true],
    [2, 1, 1, true],
  ] as const)
    add({ name: `linear x[${n},${i}] w[${o},${i}]${bias ? ' +bias' : ''}`, op: 'linear', ins: [rand([n, i]), rand([o, i]), ...(bias ? [rand([o])] : [])] });

  // Dropout: the mask must be the reference's bit for bit.
  for (const [shape, p, step] of [
    [[3, 37], 0.25, 5],
    [[150, 151], 0.5, 0],
    [[7], 0.1, 123],
  ] as const)
    add({ name: `dropout [${shape}] p ${p} step ${step}`, op: 'dropout', ins: [rand([...shape]), { shape: [], values: [step] }], attrs: { p, stream: 1 } });

  // Batch norm pieces on [N, C] and [N, C, H, W].
  for (const xs of [
    [5, 3, 4, 6],
    [7, 5],
    [16, 6, 13, 13],
  ]) {
    const c = xs[1]!;
    const x = rand(xs);
    const mean = rand([c]);
    const variance = { shape: [c], values: r.uniform(c, 0.2, 1.5) };
    const gamma = rand([c]);
    add({ name: `batch_mean [${xs}]`, op: 'batch_mean', ins: [x] });
    add({ name: `batch_var [${xs}]`, op: 'batch_var', ins: [x, mean] });
    add({ name: `batch_var_grad [${xs}]`, op: 'batch_var_grad', ins: [rand([c]), x, mean] });
    add({ name: `batch_norm [${xs}]`, op: 'batch_norm', ins: [x, mean, variance, gamma, rand([c])], attrs: { eps: 1e-5 } });
    for (const wrt of ['x', 'mean', 'var', 'gamma'])
      add({ name: `batch_norm_grad wrt ${wrt} [${xs}]`, op: 'batch_norm_grad', ins: [rand(xs), x, mean, variance, gamma], attrs: { eps: 1e-5, wrt } });
  }

  // Layer norm's row kernels alone (the layers below run them with their epilogues): rows of
  // 1, a multiple of 4 and not, over one and two trailing dims, and enough rows to split.
  for (const [xs, dims] of [
    [[3, 1], 1],
    [[2, 3, 5], 2],
    [[64, 128], 1],
    [[4, 130], 1],
  ] as const) {
    const x = { shape: [...xs], values: r.uniform(numel(xs), -2, 3) };
    add({ name: `layer_norm [${xs}] dims ${dims}`, op: 'layer_norm', ins: [x], attrs: { eps: 1e-5, dims } });
    add({ name: `layer_norm_grad [${xs}] dims ${dims}`, op: 'layer_norm_grad', ins: [rand([...xs]), x], attrs: { eps: 1e-5, dims } });
  }

  // Embedding lookups and their scatter-add gradient: repeated ids, ids outside [0, num) (a zero
  // row, no gradient: src/ir/ops/embedding.ts), row lengths past a multiple of 4, and sizes big
  // enough to split positions (forward) and rows (gradient) across threads.
  const BAD_IDS = [-1, 1.5, NaN, 1e9, -0.5];
  for (const [ids, num, dim] of [
    [[7], 5, 3],
    [[2, 9], 11, 8],
    [[3, 4, 5], 6, 1],
    [[64, 40], 50, 33],
  ] as const) {
    const n = numel(ids);
    const values = Array.from({ length: n }, (_, i) => (i % 6 === 5 ? BAD_IDS[i % BAD_IDS.length]! : i === n - 1 ? num : r.int(0, num - 1)));
    const idTensor = { shape: [...ids], values };
    add({ name: `embedding ids[${ids}] weight[${num},${dim}]`, op: 'embedding', ins: [idTensor, rand([num, dim])] });
    add({ name: `embedding_grad g[${ids},${dim}] num ${num}`, op: 'embedding_grad', ins: [rand([...ids, dim]), idTensor], attrs: { num } });
  }

  // The layers built from other ops: linear on 3-d inputs (the last large enough for the wasm
  // weight gradient to pack gᵀ and sum the bias gradient as it goes), layer norm over one and two trailing
  // dims (rows long enough to split across threads in the last), forward and every gradient.
  for (const [xs, o] of [
    [[2, 3, 7], 5],
    [[4, 33, 64], 48],
    [[2, 300, 40], 70],
  ] as const) {
    const ins = [rand([...xs]), rand([o, xs[2]]), rand([o]), rand([xs[0], xs[1], o])];
    for (const wrt of [undefined, 0, 1, 2]) out.push(layerCase(`F.linear x[${xs}] w[${o},${xs[2]}] +bias`, ins, ([x, w, bias]) => F.linear(x!, w!, bias), wrt));
  }
  for (const [xs, norm] of [
    [[3, 7], [7]],
    [[2, 3, 5], [3, 5]],
    [[8, 16, 130], [130]],
  ] as const) {
    const ins = [{ shape: [...xs], values: r.uniform(numel(xs), -2, 3) }, away([...norm]), rand([...norm]), rand([...xs])];
    for (const wrt of [undefined, 0, 1, 2]) out.push(layerCase(`F.layerNorm x[${xs}] over [${norm}]`, ins, ([x, w, bias]) => F.layerNorm(x!, [...norm], w, bias), wrt));
  }

  // Softmax family along every axis.
  for (const [xs, dim] of [
    [[4, 10], 1],
    [[4, 10], 0],
    [[2, 3, 5], 1],
    [[3, 7], 1],
  ] as const) {
    const x = rand([...xs]);
    add({ name: `log_softmax [${xs}] dim ${dim}`, op: 'log_softmax', ins: [x], attrs: { dim } });
    add({ name: `softmax [${xs}] dim ${dim}`, op: 'softmax', ins: [x], attrs: { dim } });
    add({ name: `log_softmax_grad [${xs}] dim ${dim}`, op: 'log_softmax_grad', ins: [rand([...xs]), { shape: [...xs], values: r.uniform(numel(xs), -3, -0.1) }], attrs: { dim } });
    add({ name: `softmax_grad [${xs}] dim ${dim}`, op: 'softmax_grad', ins: [rand([...xs]), { shape: [...xs], values: r.uniform(numel(xs), 0, 1) }], attrs: { dim } });
  }
  for (const [n, k] of [
    [5, 10],
    [13, 3],
  ]) {
    const labels = { shape: [n], values: Array.from({ length: n }, () => r.int(0, k - 1)) };
    add({ name: `cross_entropy [${n},${k}]`, op: 'cross_entropy', ins: [rand([n, k]), labels] });
    add({ name: `cross_entropy_grad [${n},${k}]`, op: 'cross_entropy_grad', ins: [{ shape: [], values: [0.7] }, rand([n, k]), labels] });
  }

  // Adam, at the first step and a later one.
  for (const [n, step] of [
    [13, 0],
    [301, 7],
  ]) {
    const v = { shape: [n], values: r.uniform(n, 0, 0.01) };
    add({ name: `adam_step [${n}] step ${step}`, op: 'adam_step', ins: [rand([n]), rand([n]), v, { shape: [], values: [step] }], attrs: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 } });
  }
  return out;
}

describeEachBackend('op parity: every op alone', (backend, skipped) => {
  it.each(opCases().map((c) => [c.name, c] as const))(`${backend.name}: %s`, async (_, c) => {
    if (skipped()) return;
    const steps = opSteps(c);
    const initial = new Map(c.ins.map((x, k) => [`in${k}`, Float32Array.from(x.values)]));
    const ref = new ReferenceBackend(steps, initial, 1, 7);
    const ours = await backend.open(steps, initial, 1, 7, lowerNaive);
    const x = new Float32Array(1);
    const labels = new Float32Array(1);
    const want = ref.trainStep(x, labels, 3).logits;
    const got = (await runTrainStep(ours, x, labels, 3)).logits;
    ours.dispose();
    expect(got.length).toBe(want.length);
    const err = relErr(got, want);
    expect(err, `relative error ${err.toExponential(2)}`).toBeLessThanOrEqual(TOL);
  });
});
