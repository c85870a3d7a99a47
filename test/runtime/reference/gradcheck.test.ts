import { describe, expect, it } from 'vitest';
import type { GraphBuilder } from '../../../src/ir/builder.ts';
import { allOps } from '../../../src/ir/op.ts';
import '../../../src/ir/ops/index.ts';
import { numel } from '../../../src/ir/shape.ts';
import { differentiate } from '../../../src/passes/autodiff.ts';
import { executeGraph } from '../../../src/runtime/reference/execute.ts';
import { asNumbers, kilnAttrs, loadFixture } from '../../fixtures/pytorch/elementwise.ts';
import { F } from '../../../src/frontend/api.ts';
import type { Tensor } from '../../../src/frontend/tensor.ts';
import { Tracer, withTracer } from '../../../src/frontend/tracer.ts';
import { rng, withParams, type Rng } from './helpers.ts';

// Every op's gradient rule, composed by the autodiff pass and run by the reference kernels, is
// checked against central finite differences of the reference forward, in f64.
//
// Loss = Σ op(leaves) · W with fixed random weights W, so every output element matters with its
// own weight. Central differences: L'(x) ≈ (L(x+ε) - L(x-ε))/2ε, truncation error ε²·L'''/6
// ≈ 1e-13 at ε = 1e-6; the rounding error of two f64 losses of size ~10 divided by 2ε is about
// 1e-9. So |analytic - fd| <= 1e-8 + 1e-6·|fd| holds with margin for a correct rule and fails
// for any wrong term (errors of wrong rules are O(1)).
const EPS = 1e-6;
const ABS_TOL = 1e-8;
const REL_TOL = 1e-6;

interface Leaf {
  shape: number[];
  values: number[];
  /** Differentiate with respect to it (default true); false for labels. */
  wrt?: boolean;
}

interface GradCase {
  name: string;
  leaves: Record<string, Leaf>;
  feeds?: Record<string, number[]>;
  build: (b: GraphBuilder, id: Record<string, number>) => number;
}

const leaf = (shape: number[], values: number[], wrt = true): Leaf => {
  if (values.length !== numel(shape)) throw new Error(`leaf of shape [${shape}] given ${values.length} values`);
  return { shape, values, wrt };
};

function cases(): GradCase[] {
  const r = rng(20261127);
  const rand = (shape: number[]) => leaf(shape, r.uniform(numel(shape)));
  const out: GradCase[] = [];
  const add = (c: GradCase) => out.push(c);

  // conv2d: odd sizes (7x5 input, 3x2 kernel), stride 1/2 (and unequal), padding 0/1/2 (and
  // unequal), with and without bias; batch and channel counts drawn from the seeded PRNG.
  const convConfigs: [number[], number[], boolean][] = [
    [[1, 1], [0, 0], true],
    [[1, 1], [1, 1], false],
    [[2, 2], [0, 0], false],
    [[2, 2], [1, 1], true],
    [[1, 2], [2, 2], true],
    [[2, 1], [2, 1], false],
  ];
  for (const [stride, padding, bias] of convConfigs) {
    const [n, c, o] = [r.int(1, 2), r.int(1, 3), r.int(1, 3)];
    add({
      name: `conv2d x[${n},${c},7,5] w[${o},${c},3,2] stride ${stride} padding ${padding}${bias ? ' +bias' : ''}`,
      leaves: { x: rand([n, c, 7, 5]), w: rand([o, c, 3, 2]), ...(bias ? { bias: rand([o]) } : {}) },
      build: (b, id) => b.op('conv2d', bias ? [id.x!, id.w!, id.bias!] : [id.x!, id.w!], { stride, padding }),
    });
  }
  {
    const [h, w] = [r.int(4, 6), r.int(4, 6)];
    add({
      name: `conv2d 1x1 kernel, stride 2, x[2,2,${h},${w}]`,
      leaves: { x: rand([2, 2, h, w]), w: rand([3, 2, 1, 1]), bias: rand([3]) },
      build: (b, id) => b.op('conv2d', [id.x!, id.w!, id.bias!], { stride: [2, 2], padding: [0, 0] }),
    });
  }

  // The elementwise ops of the PyTorch fixture, each case at its seeded points (past the
  // hand-placed kinks and ties, where a finite difference means nothing), then with the last
  // operand broadcast from [4] when there are two or more. Comparisons differentiate nothing.
  for (const c of loadFixture().cases) {
    const names = Object.keys(c.inputs);
    const tail = (n: string) => asNumbers(c.inputs[n]!).slice(c.special);
    const rows = Math.floor(tail(names[0]!).length / 4);
    const layouts = [names.map(() => [rows * 4]), ...(names.length > 1 ? [names.map((_, k) => (k === names.length - 1 ? [4] : [rows, 4]))] : [])];
    for (const shapes of layouts) {
      const leaves = Object.fromEntries(names.map((n, k) => [n, leaf(shapes[k]!, tail(n).slice(0, numel(shapes[k]!)), n in c.grads)]));
      add({ name: `${c.name}: ${c.call}, ${names.map((n) => `${n}[${leaves[n]!.shape}]`).join(' ')}`, leaves, build: (b, id) => b.op(c.op, names.map((n) => id[n]!), kilnAttrs(c)) });
    }
  }

  // Pools. Max pool inputs are distinct values 0.05 apart: FD is valid only away from ties
  // (ties are checked on their own below).
  const poolConfigs: [number[], number[], number[]][] = [
    [[2, 2], [2, 2], [0, 0]],
    [[3, 3], [1, 1], [1, 1]],
    [[3, 3], [2, 2], [1, 1]],
    [[2, 3], [1, 2], [1, 1]],
    [[3, 2], [2, 1], [0, 1]],
  ];
  for (const [kernel, stride, padding] of poolConfigs) {
    const shape = [r.int(1, 2), r.int(1, 2), r.int(5, 7), r.int(5, 7)];
    add({
      name: `max_pool2d x[${shape}] kernel ${kernel} stride ${stride} padding ${padding}`,
      leaves: { x: leaf(shape, r.distinct(numel(shape))) },
      build: (b, id) => b.op('max_pool2d', [id.x!], { kernel, stride, padding }),
    });
    add({
      name: `avg_pool2d x[${shape}] kernel ${kernel} stride ${stride} padding ${padding}`,
      leaves: { x: rand(shape) },
      build: (b, id) => b.op('avg_pool2d', [id.x!], { kernel, stride, padding }),
    });
  }

  // Adaptive average pooling: global, dividing, and overlapping bins of unequal size.
  for (const [shape, size] of [
    [[2, 3, 5, 4], [1, 1]],
    [[1, 2, 6, 4], [3, 2]],
    [[2, 1, 5, 7], [3, 4]],
    [[1, 2, 3, 3], [5, 2]],
  ] as const)
    add({ name: `adaptive_avg_pool2d x[${shape}] size ${size}`, leaves: { x: rand([...shape]) }, build: (b, id) => b.op('adaptive_avg_pool2d', [id.x!], { size: [...size] }) });

  // linear and matmul.
  for (const bias of [true, false]) {
    const [n, i, o] = [r.int(1, 4), r.int(2, 6), r.int(1, 5)];
    add({
      name: `linear x[${n},${i}] w[${o},${i}]${bias ? ' +bias' : ''}`,
      leaves: { x: rand([n, i]), w: rand([o, i]), ...(bias ? { bias: rand([o]) } : {}) },
      build: (b, id) => b.op('linear', bias ? [id.x!, id.w!, id.bias!] : [id.x!, id.w!]),
    });
  }
  for (const transA of [false, true])
    for (const transB of [false, true]) {
      const [m, k, n] = [r.int(2, 5), r.int(2, 5), r.int(2, 5)];
      const a = transA ? [k, m] : [m, k];
      const bb = transB ? [n, k] : [k, n];
      add({
        name: `matmul a[${a}] b[${bb}] transA=${transA} transB=${transB}`,
        leaves: { a: rand(a), b: rand(bb) },
        build: (b, id) => b.op('matmul', [id.a!, id.b!], { transA, transB }),
      });
    }

  // Batched matmul: the gradient of a broadcast operand is summed over the batch it was broadcast along.
  for (const [as, bs, transA, transB] of [
    [[2, 3, 4], [2, 4, 2], false, false],
    [[2, 1, 3, 4], [3, 4, 2], false, false],
    [[3, 4], [2, 2, 3, 5], true, false],
    [[2, 3, 4, 3], [1, 3, 2, 3], false, true],
  ] as [number[], number[], boolean, boolean][])
    add({ name: `matmul a[${as}] b[${bs}] transA=${transA} transB=${transB}`, leaves: { a: rand(as), b: rand(bs) }, build: (b, id) => b.op('matmul', [id.a!, id.b!], { transA, transB }) });
  for (const dims of [[1, 0, 2], [2, 0, 1], [0, 2, 1]])
    add({ name: `permute [2,3,4] dims [${dims}]`, leaves: { x: rand([2, 3, 4]) }, build: (b, id) => b.op('permute', [id.x!], { dims }) });
  add({ name: 'slice [3,5,2] dim 1 [1, 4)', leaves: { x: rand([3, 5, 2]) }, build: (b, id) => b.op('slice', [id.x!], { dim: 1, start: 1, end: 4 }) });
  add({ name: 'pad [3,2,2] dim 1 before 1 after 2', leaves: { x: rand([3, 2, 2]) }, build: (b, id) => b.op('pad', [id.x!], { dim: 1, before: 1, after: 2 }) });
  // Three slices of one tensor (a split): their gradients, each zero outside its piece, add up.
  add({
    name: 'split of [4,6] along dim 1 into 2 + 3 + 1, pieces recombined',
    leaves: { x: rand([4, 6]) },
    build: (b, id) => {
      const [p, q, r2] = [[0, 2], [2, 5], [5, 6]].map(([start, end]) => b.op('slice', [id.x!], { dim: 1, start: start!, end: end! }));
      return b.op('add', [b.op('mul', [p!, b.op('slice', [q!], { dim: 1, start: 1, end: 3 })]), b.op('mul', [r2!, r2!])]);
    },
  });

  // Broadcasting binaries; div's denominator kept away from 0.
  const pairs: [number[], number[]][] = [
    [[2, 3, 4], [3, 1]],
    [[3, 1], [2, 3, 4]],
    [[], [2, 3]],
    [[2, 3], []],
    [[2, 1], [4]],
    [[2, 3], [2, 3]],
  ];
  for (const op of ['add', 'sub', 'mul', 'div'])
    for (const [sa, sb] of pairs)
      add({
        name: `${op} [${sa}] with [${sb}]`,
        leaves: { a: rand(sa), b: op === 'div' ? leaf(sb, r.awayFromZero(numel(sb), 0.5, 1.5)) : rand(sb) },
        build: (b, id) => b.op(op, [id.a!, id.b!]),
      });


  // Reductions and broadcasts.
  for (const [axes, keepdim] of [[[1], false], [[1], true], [[0, 2], false], [[0, 2], true], [[0, 1, 2], false], [[], false]] as [number[], boolean][])
    add({ name: `sum axes [${axes}] keepdim=${keepdim}`, leaves: { x: rand([2, 3, 4]) }, build: (b, id) => b.op('sum', [id.x!], { axes, keepdim }) });
  for (const [from, to] of [[[3, 1], [2, 3, 4]], [[], [2, 2]], [[4], [3, 4]], [[2, 1, 4], [2, 3, 4]]] as number[][][])
    add({ name: `expand [${from}] to [${to}]`, leaves: { x: rand(from!) }, build: (b, id) => b.op('expand', [id.x!], { shape: to! }) });
  for (const [from, to] of [[[2, 3, 4], [3, 1]], [[2, 3, 4], [4]], [[2, 3, 4], []], [[2, 3, 4], [2, 1, 4]]] as number[][][])
    add({ name: `sum_to [${from}] to [${to}]`, leaves: { x: rand(from!) }, build: (b, id) => b.op('sum_to', [id.x!], { shape: to! }) });
  add({ name: 'reshape [2,3,4] to [6,4]', leaves: { x: rand([2, 3, 4]) }, build: (b, id) => b.op('reshape', [id.x!], { shape: [6, 4] }) });

  // Dropout with the step fixed: the mask is a deterministic function of (seed, step, stream),
  // so the op is linear in x and FD is exact.
  for (const p of [0.3, 0.5])
    add({
      name: `dropout p=${p}`,
      leaves: { x: rand([4, 6]) },
      feeds: { step: [5] },
      build: (b, id) => b.op('dropout', [id.x!, b.op('input', [], { name: 'step', shape: [] })], { p, stream: 1 }),
    });

  // Batch norm as the frontend builds it in training: statistics from the batch, so the
  // x-gradient flows through batch_mean and batch_var too.
  for (const xs of [[r.int(3, 5), 3], [2, 3, r.int(2, 3), 3]]) {
    const c = xs[1]!;
    add({
      name: `batch_mean -> batch_var -> batch_norm x[${xs}]`,
      leaves: { x: rand(xs), gamma: leaf([c], r.awayFromZero(c, 0.5, 1.5)), beta: rand([c]) },
      build: (b, id) => {
        const mean = b.op('batch_mean', [id.x!]);
        const v = b.op('batch_var', [id.x!, mean]);
        return b.op('batch_norm', [id.x!, mean, v, id.gamma!, id.beta!], { eps: 1e-5 });
      },
    });
  }
  // batch_norm alone with independent mean and var (evaluation mode): each partial derivative.
  add({
    name: 'batch_norm with independent mean and var, x[3,2,2,2]',
    leaves: { x: rand([3, 2, 2, 2]), mean: rand([2]), var: leaf([2], r.uniform(2, 0.5, 1.5)), gamma: rand([2]), beta: rand([2]) },
    build: (b, id) => b.op('batch_norm', [id.x!, id.mean!, id.var!, id.gamma!, id.beta!], { eps: 1e-5 }),
  });

  // Embedding: the weight gradient with repeated ids and ids outside [0, num), which get none.
  {
    const ids = [3, 0, 3, 4, -1, 1.5, 3, 5, 0];
    add({
      name: `embedding ids[3,3] weight[5,2] (ids not differentiated)`,
      leaves: { ids: leaf([3, 3], ids, false), w: rand([5, 2]) },
      build: (b, id) => b.op('embedding', [id.ids!, id.w!]),
    });
  }

  // The layers the frontend composes from ops, traced into the case's graph: linear on a 3-d
  // input (views around the 2-d op) and layer norm over one and two trailing dims, with and
  // without its affine weights.
  const traced = (b: GraphBuilder, id: Record<string, number>, f: (t: Record<string, Tensor>) => Tensor) => {
    const tracer = new Tracer('train', b);
    return withTracer(tracer, () => f(Object.fromEntries(Object.entries(id).map(([k, v]) => [k, tracer.wrap(v)])))).node;
  };
  add({
    name: 'F.linear on x[2,3,4] w[5,4] +bias',
    leaves: { x: rand([2, 3, 4]), w: rand([5, 4]), bias: rand([5]) },
    build: (b, id) => traced(b, id, (t) => F.linear(t.x!, t.w!, t.bias)),
  });
  for (const [xs, norm, affine] of [
    [[3, 5], [5], true],
    [[2, 3, 4], [4], true],
    [[2, 3, 4], [3, 4], true],
    [[2, 3, 4], [4], false],
  ] as const) {
    add({
      name: `F.layerNorm x[${xs}] over [${norm}]${affine ? ' with weight and bias' : ''}`,
      leaves: { x: leaf([...xs], r.uniform(numel(xs), -2, 2)), ...(affine ? { w: leaf([...norm], r.awayFromZero(numel(norm), 0.5, 1.5)), bias: rand([...norm]) } : {}) },
      build: (b, id) => traced(b, id, (t) => F.layerNorm(t.x!, [...norm], t.w, t.bias, 1e-5)),
    });
  }

  for (const op of ['log_softmax', 'softmax'])
    for (const dim of [0, 1, 2])
      add({ name: `${op} dim ${dim} of [3,4,5]`, leaves: { x: leaf([3, 4, 5], r.uniform(60, -3, 3)) }, build: (b, id) => b.op(op, [id.x!], { dim }) });

  {
    const [n, k] = [r.int(2, 5), r.int(2, 6)];
    add({
      name: `cross_entropy logits[${n},${k}] (labels not differentiated)`,
      leaves: { logits: leaf([n, k], r.uniform(n * k, -3, 3)), labels: leaf([n], Array.from({ length: n }, () => r.int(0, k - 1)), false) },
      build: (b, id) => b.op('cross_entropy', [id.logits!, id.labels!]),
    });
  }
  return out;
}

interface Built {
  b: GraphBuilder;
  id: Record<string, number>;
  out: number;
  loss: number;
}

function buildCase(c: GradCase): Built {
  const { b, id } = withParams(Object.fromEntries(Object.entries(c.leaves).map(([k, l]) => [k, l.shape])));
  const out = c.build(b, id);
  const shape = b.node(out).shape;
  const weights = b.op('param', [], { name: '__weights', shape: [...shape] });
  const loss = b.op('sum', [b.op('mul', [out, weights])], { axes: shape.map((_, i) => i), keepdim: false });
  return { b, id, out, loss };
}

function gradcheck(c: GradCase, r: Rng): void {
  const { b, id, out, loss } = buildCase(c);
  const forward = { nodes: b.nodes.slice(0, loss + 1) };
  const wrt = Object.entries(c.leaves).filter(([, l]) => l.wrt !== false);
  const grads = differentiate(b, loss, wrt.map(([name]) => id[name]!));

  const state = new Map<string, Float64Array>(Object.entries(c.leaves).map(([name, l]) => [name, Float64Array.from(l.values)]));
  state.set('__weights', Float64Array.from(r.uniform(numel(b.node(out).shape))));
  const opts = { dtype: 'f64', seed: 7 } as const;
  const feeds = c.feeds ?? {};
  const values = executeGraph(b, feeds, state, opts);
  const lossAt = () => executeGraph(forward, feeds, state, opts)[loss]![0]!;

  const failures: string[] = [];
  for (const [name, l] of wrt) {
    const g = grads.get(id[name]!);
    expect(g, `no gradient for ${name}`).toBeDefined();
    const analytic = values[g!]!;
    expect(analytic.length).toBe(numel(l.shape));
    const x = state.get(name)!;
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      x[i] = orig + EPS;
      const up = lossAt();
      x[i] = orig - EPS;
      const down = lossAt();
      x[i] = orig;
      const fd = (up - down) / (2 * EPS);
      const err = Math.abs(analytic[i]! - fd);
      if (!(err <= ABS_TOL + REL_TOL * Math.abs(fd))) failures.push(`d/d${name}[${i}]: analytic ${analytic[i]} vs fd ${fd} (error ${err.toExponential(2)})`);
    }
  }
  expect(failures.slice(0, 8), `${failures.length} mismatches`).toEqual([]);
}

describe('reference backend gradients vs central finite differences (f64)', () => {
  cases().forEach((c, k) => {
    it(c.name, () => gradcheck(c, rng(1000 + k)));
  });

  it('covers every op that has a gradient rule', () => {
    const covered = new Set<string>();
    for (const c of cases()) {
      const { b, loss } = buildCase(c);
      for (const n of b.nodes.slice(0, loss + 1)) covered.add(n.op);
    }
    const differentiable = allOps().filter((d) => d.grad).map((d) => d.name);
    expect(differentiable.length).toBeGreaterThan(10);
    expect(differentiable.filter((name) => !covered.has(name))).toEqual([]);
  });

  it('dropout gradient applies the forward mask: some elements dropped, the rest scaled by 1/(1-p)', () => {
    const { b, id } = withParams({ x: [10, 10] });
    const y = b.op('dropout', [id.x!, b.op('input', [], { name: 'step', shape: [] })], { p: 0.5, stream: 0 });
    const loss = b.op('sum', [y], { axes: [0, 1], keepdim: false });
    const g = differentiate(b, loss, [id.x!]).get(id.x!)!;
    const values = executeGraph(b, { step: [3] }, { x: new Array(100).fill(1) }, { dtype: 'f64' });
    const grad = [...values[g]!];
    expect(grad.every((v) => v === 0 || v === 2)).toBe(true);
    expect(grad.filter((v) => v === 0).length).toBeGreaterThan(20);
    expect(grad.filter((v) => v === 2).length).toBeGreaterThan(20);
    // The same elements survive in the forward.
    expect([...values[y]!]).toEqual(grad);
  });
});

describe('max_pool2d gradient at ties (where FD is invalid): all of it to the first maximum in row-major window order', () => {
  function poolGrad(shape: number[], x: number[], attrs: Record<string, number[]>, weights: number[]) {
    const { b, id } = withParams({ x: shape });
    const y = b.op('max_pool2d', [id.x!], attrs);
    const w = b.op('param', [], { name: 'w', shape: [...b.node(y).shape] });
    const loss = b.op('sum', [b.op('mul', [y, w])], { axes: [0, 1, 2, 3], keepdim: false });
    const g = differentiate(b, loss, [id.x!]).get(id.x!)!;
    const values = executeGraph(b, {}, { x, w: weights }, { dtype: 'f64' });
    return { y: [...values[y]!], grad: [...values[g]!] };
  }

  it('2x2 windows, stride 2: ties inside windows', () => {
    // prettier-ignore
    const x = [
      1, 3, 3, 0,
      2, 3, 1, 3,
      5, 5, 0, 0,
      5, 4, 0, 0,
    ];
    const { y, grad } = poolGrad([1, 1, 4, 4], x, { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, [1, 2, 3, 4]);
    expect(y).toEqual([3, 3, 5, 0]);
    // Window (0,0) {1,3,2,3}: first 3 at (0,1). Window (0,1) {3,0,1,3}: first 3 at (0,2).
    // Window (1,0) {5,5,5,4}: (2,0). Window (1,1) all 0: (2,2).
    // prettier-ignore
    expect(grad).toEqual([
      0, 1, 2, 0,
      0, 0, 0, 0,
      3, 0, 4, 0,
      0, 0, 0, 0,
    ]);
  });

  it('3x3 windows, stride 1, padding 1, constant negative input: padding is -inf, not 0, and overlapping windows add', () => {
    const { y, grad } = poolGrad([1, 1, 3, 3], new Array(9).fill(-2), { kernel: [3, 3], stride: [1, 1], padding: [1, 1] }, new Array(9).fill(1));
    expect(y).toEqual(new Array(9).fill(-2));
    // Output cell (oh, ow) reads rows oh-1..oh+1; its first in-bounds element is
    // (max(oh-1, 0), max(ow-1, 0)). Counting the cells that pick each element:
    // prettier-ignore
    expect(grad).toEqual([
      4, 2, 0,
      2, 1, 0,
      0, 0, 0,
    ]);
  });
});
