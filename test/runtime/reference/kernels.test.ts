import { describe, expect, it } from 'vitest';
import type { Attrs, Node } from '../../../src/ir/graph.ts';
import { allOps } from '../../../src/ir/op.ts';
import '../../../src/ir/ops/index.ts';
import { numel, windowOut } from '../../../src/ir/shape.ts';
import { executeGraph, type ExecuteOptions } from '../../../src/runtime/reference/execute.ts';
import { referenceKernels } from '../../../src/runtime/reference/kernels/index.ts';
import { rng, withParams } from './helpers.ts';

// Forward values of the reference kernels against small hand-computed examples and against
// independent naive formulas written here with a different loop structure.

interface In {
  shape: number[];
  values: ArrayLike<number>;
}

/** Runs one op on param leaves in0, in1, ...; returns its output and shape. */
function run(op: string, ins: In[], attrs: Attrs = {}, opts: ExecuteOptions = { dtype: 'f64' }) {
  const { b, id } = withParams(Object.fromEntries(ins.map((x, k) => [`in${k}`, x.shape])));
  const y = b.op(op, ins.map((_, k) => id[`in${k}`]!), attrs);
  const values = executeGraph(b, {}, Object.fromEntries(ins.map((x, k) => [`in${k}`, x.values])), opts);
  return { out: [...values[y]!], shape: b.node(y).shape };
}

const iota = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

/** |a - b| <= tol elementwise, with the index of the first failure in the message. */
function expectClose(a: readonly number[], b: readonly number[], tol: number): void {
  expect(a.length).toBe(b.length);
  const bad = a.findIndex((v, i) => !(Math.abs(v - b[i]!) <= tol));
  expect(bad, bad >= 0 ? `index ${bad}: ${a[bad]} vs ${b[bad]}` : '').toBe(-1);
}

describe('kernel table', () => {
  it('has a kernel for every op but the leaves, and none for unknown ops', () => {
    const leaves = new Set(['input', 'param', 'const']);
    const ops = allOps().map((d) => d.name);
    expect(ops.length).toBeGreaterThan(20);
    expect(ops.filter((name) => !leaves.has(name) && !referenceKernels[name])).toEqual([]);
    expect(Object.keys(referenceKernels).filter((name) => !ops.includes(name) || leaves.has(name))).toEqual([]);
  });
});

describe('elementwise and reductions', () => {
  it('add broadcasts [2,3,4] with [3,1] like NumPy', () => {
    const a = iota(24);
    const bv = [100, 200, 300];
    const { out, shape } = run('add', [{ shape: [2, 3, 4], values: a }, { shape: [3, 1], values: bv }]);
    expect(shape).toEqual([2, 3, 4]);
    expect(out).toEqual(a.map((v, i) => v + bv[Math.floor(i / 4) % 3]!));
  });

  it('div and sub broadcast both ways ([2,1] with [4])', () => {
    const { out } = run('div', [{ shape: [2, 1], values: [8, 16] }, { shape: [4], values: [1, 2, 4, 8] }]);
    expect(out).toEqual([8, 4, 2, 1, 16, 8, 4, 2]);
    expect(run('sub', [{ shape: [], values: [1] }, { shape: [2, 2], values: [1, 2, 3, 4] }]).out).toEqual([0, -1, -2, -3]);
  });

  it('relu, relu_grad, neg, axpby', () => {
    expect(run('relu', [{ shape: [4], values: [-1, 0, 2, -0.5] }]).out).toEqual([0, 0, 2, 0]);
    expect(run('relu_grad', [{ shape: [3], values: [5, 6, 7] }, { shape: [3], values: [0, 1, 0] }]).out).toEqual([0, 6, 0]);
    expect(run('neg', [{ shape: [2], values: [1, -2] }]).out).toEqual([-1, 2]);
    expect(run('axpby', [{ shape: [2], values: [1, 2] }, { shape: [2], values: [10, 20] }], { alpha: 0.5, beta: 2 }).out).toEqual([20.5, 41]);
  });

  it('sum over axes with and without keepdim; expand; sum_to', () => {
    const x = { shape: [2, 3, 4], values: iota(24, 0) };
    // Σ over axis 1 of x[i,j,k] = 12i + 4j + k: 36i + 12 + 3k.
    const s1 = run('sum', [x], { axes: [1], keepdim: false });
    expect(s1.shape).toEqual([2, 4]);
    expect(s1.out).toEqual([12, 15, 18, 21, 48, 51, 54, 57]);
    const s1k = run('sum', [x], { axes: [1], keepdim: true });
    expect(s1k.shape).toEqual([2, 1, 4]);
    expect(s1k.out).toEqual(s1.out);
    // Σ over axes 0 and 2: Σ_i,k (12i + 4j + k) = 4·12 + 8·4j + 2·6 = 60 + 32j; sum_to [3, 1] is the same.
    expect(run('sum', [x], { axes: [0, 2], keepdim: false }).out).toEqual([60, 92, 124]);
    expect(run('sum', [x], { axes: [0, 1, 2], keepdim: false }).out).toEqual([276]);
    expect(run('expand', [{ shape: [3, 1], values: [1, 2, 3] }], { shape: [2, 3, 2] }).out).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
    expect(run('sum_to', [x], { shape: [3, 1] }).out).toEqual([60, 92, 124]);
    expect(run('reshape', [x], { shape: [4, 6] }).out).toEqual(iota(24, 0));
  });
});

describe('conv2d', () => {
  it('hand-computed: 3x3 input, 2x2 ones kernel, stride 1, bias', () => {
    const { out, shape } = run('conv2d', [{ shape: [1, 1, 3, 3], values: iota(9) }, { shape: [1, 1, 2, 2], values: [1, 1, 1, 1] }, { shape: [1], values: [0.5] }], { stride: [1, 1], padding: [0, 0] });
    expect(shape).toEqual([1, 1, 2, 2]);
    expect(out).toEqual([12.5, 16.5, 24.5, 28.5]);
  });

  it('hand-computed: padding 1, stride 2 (zero padding contributes nothing)', () => {
    // Windows start at rows/cols -1 and 1: {1}, {2,3}, {4,7}, {5,6,8,9}.
    const { out } = run('conv2d', [{ shape: [1, 1, 3, 3], values: iota(9) }, { shape: [1, 1, 2, 2], values: [1, 1, 1, 1] }], { stride: [2, 2], padding: [1, 1] });
    expect(out).toEqual([1, 5, 11, 28]);
  });

  it('matches an explicit zero-padded im2col + matmul on random multi-channel input', () => {
    const r = rng(7);
    const [N, C, H, W, O, KH, KW] = [2, 3, 7, 5, 4, 3, 2];
    for (const [stride, padding] of [[[1, 1], [0, 0]], [[2, 1], [1, 2]], [[2, 2], [2, 1]]] as number[][][]) {
      const [sh, sw] = stride as [number, number];
      const [ph, pw] = padding as [number, number];
      const x = r.uniform(N * C * H * W);
      const w = r.uniform(O * C * KH * KW);
      const bias = r.uniform(O);
      const { out, shape } = run('conv2d', [{ shape: [N, C, H, W], values: x }, { shape: [O, C, KH, KW], values: w }, { shape: [O], values: bias }], { stride, padding });
      const [HO, WO] = [windowOut(H, KH, sh, ph), windowOut(W, KW, sw, pw)];
      expect(shape).toEqual([N, O, HO, WO]);
      // Materialise the padded input, then each output is a dot product of a patch with a filter.
      const [HP, WP] = [H + 2 * ph, W + 2 * pw];
      const padded = new Float64Array(N * C * HP * WP);
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let v = 0; v < W; v++) padded[((n * C + c) * HP + h + ph) * WP + v + pw] = x[((n * C + c) * H + h) * W + v]!;
      const expected: number[] = [];
      for (let n = 0; n < N; n++)
        for (let o = 0; o < O; o++)
          for (let i = 0; i < HO; i++)
            for (let j = 0; j < WO; j++) {
              const patch: number[] = [];
              const filter: number[] = [];
              for (let c = 0; c < C; c++)
                for (let a = 0; a < KH; a++)
                  for (let bb = 0; bb < KW; bb++) {
                    patch.push(padded[((n * C + c) * HP + i * sh + a) * WP + j * sw + bb]!);
                    filter.push(w[((o * C + c) * KH + a) * KW + bb]!);
                  }
              expected.push(patch.reduce((s, v, k) => s + v * filter[k]!, bias[o]!));
            }
      // Same f64 products summed in another order: agree to rounding.
      expectClose(out, expected, 1e-12);
    }
  });
});

describe('pooling', () => {
  it('max_pool2d hand-computed, with and without padding', () => {
    // prettier-ignore
    const x = [
      1, 9, 2, 0,
      4, 3, 8, 7,
      -1, -2, 5, 6,
      -4, -3, 6, 5,
    ];
    expect(run('max_pool2d', [{ shape: [1, 1, 4, 4], values: x }], { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }).out).toEqual([9, 8, -1, 6]);
    // 3x3 windows, stride 2, padding 1: rows/cols {-1..1} and {1..3}; padding is -inf.
    const p = run('max_pool2d', [{ shape: [1, 1, 4, 4], values: x }], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] });
    expect(p.shape).toEqual([1, 1, 2, 2]);
    expect(p.out).toEqual([9, 9, 4, 8]);
    // All-negative input with padding: the padding must not win as a 0.
    expect(run('max_pool2d', [{ shape: [1, 1, 2, 2], values: [-5, -6, -7, -8] }], { kernel: [2, 2], stride: [1, 1], padding: [1, 1] }).out).toEqual([-5, -5, -6, -5, -5, -6, -7, -7, -8]);
  });

  it('avg_pool2d counts the padding (count_include_pad=True)', () => {
    // x = 1..9 as 3x3; 2x2 windows, stride 2, padding 1: {1}, {2,3}, {4,7}, {5,6,8,9}, all / 4.
    expect(run('avg_pool2d', [{ shape: [1, 1, 3, 3], values: iota(9) }], { kernel: [2, 2], stride: [2, 2], padding: [1, 1] }).out).toEqual([0.25, 1.25, 2.75, 7]);
    const full = run('avg_pool2d', [{ shape: [1, 1, 3, 3], values: iota(9) }], { kernel: [3, 3], stride: [1, 1], padding: [1, 1] });
    expectClose(full.out, [12 / 9, 21 / 9, 16 / 9, 27 / 9, 45 / 9, 33 / 9, 24 / 9, 39 / 9, 28 / 9], 1e-15);
  });

  it('adaptive_avg_pool2d and its gradient: bins that overlap and differ in size, as torch 1.13 computes them', () => {
    // torch.nn.functional.adaptive_avg_pool2d(torch.arange(35.).reshape(1, 1, 5, 7), (3, 4)), and
    // x.grad after y.backward(torch.arange(12.).reshape(1, 1, 3, 4)): rows {0,1}, {1,2,3}, {3,4};
    // columns {0,1}, {1,2,3}, {3,4,5}, {5,6}.
    const y = run('adaptive_avg_pool2d', [{ shape: [1, 1, 5, 7], values: iota(35).map((v) => v - 1) }], { size: [3, 4] });
    expect(y.shape).toEqual([1, 1, 3, 4]);
    expect(y.out).toEqual([4, 5.5, 7.5, 9, 14.5, 16, 18, 19.5, 25, 26.5, 28.5, 30]);
    const dx = run('adaptive_avg_pool2d_grad', [{ shape: [1, 1, 3, 4], values: iota(12).map((v) => v - 1) }], { shape: [1, 1, 5, 7] });
    // prettier-ignore
    const torchGrad = [
      0.0, 0.1666666716337204, 0.1666666716337204, 0.5, 0.3333333432674408, 1.0833333730697632, 0.75, 0.6666666865348816, 1.3888888359069824,
      0.7222222089767456, 1.7222223281860352, 1.0, 2.9166665077209473, 1.9166666269302368, 0.6666666865348816, 1.2222222089767456,
      0.555555522441864, 1.2222222089767456, 0.6666666865348816, 1.8333332538604736, 1.1666666269302368, 2.6666667461395264, 4.722222328186035,
      2.055555582046509, 4.388888835906982, 2.3333332538604736, 6.25, 3.9166665077209473, 2.0, 3.5, 1.5, 3.1666665077209473, 1.6666666269302368,
      4.416666507720947, 2.75,
    ];
    // torch sums the f32 shares in f32; the reference rounds one f64 sum: a few ulps apart.
    expectClose(dx.out, torchGrad, 1e-6);
  });
});

describe('linear and matmul', () => {
  it('linear hand-computed: x·wᵀ + b with w [out, in]', () => {
    const { out, shape } = run('linear', [
      { shape: [2, 3], values: [1, 2, 3, 4, 5, 6] },
      { shape: [2, 3], values: [1, 0, -1, 2, 1, 0] },
      { shape: [2], values: [0.5, -1] },
    ]);
    expect(shape).toEqual([2, 2]);
    expect(out).toEqual([-1.5, 3, -1.5, 12]);
  });

  it('matmul with every transpose combination equals the plain product of the transposed operands', () => {
    const A = [1, 2, 3, 4, 5, 6]; // [2, 3]
    const B = [1, 0, 2, -1, 3, 1]; // [3, 2]
    const AB = [1 * 1 + 2 * 2 + 3 * 3, 1 * 0 - 2 + 3, 4 + 10 + 18, -5 + 6]; // [[14, 1], [32, 1]]
    const At = [1, 4, 2, 5, 3, 6]; // Aᵀ stored [3, 2]
    const Bt = [1, 2, 3, 0, -1, 1]; // Bᵀ stored [2, 3]
    expect(run('matmul', [{ shape: [2, 3], values: A }, { shape: [3, 2], values: B }], { transA: false, transB: false }).out).toEqual(AB);
    expect(run('matmul', [{ shape: [3, 2], values: At }, { shape: [3, 2], values: B }], { transA: true, transB: false }).out).toEqual(AB);
    expect(run('matmul', [{ shape: [2, 3], values: A }, { shape: [2, 3], values: Bt }], { transA: false, transB: true }).out).toEqual(AB);
    expect(run('matmul', [{ shape: [3, 2], values: At }, { shape: [2, 3], values: Bt }], { transA: true, transB: true }).out).toEqual(AB);
  });
});

describe('softmax family', () => {
  it('cross_entropy: hand-computed mean of -log softmax[label]', () => {
    const logits = { shape: [2, 3], values: [1, 2, 3, 1, 1, 1] };
    const labels = { shape: [2], values: [2, 0] };
    // Row 0: log(e + e² + e³) - 3 = 0.40760596444438013; row 1: log 3.
    const expected = (0.40760596444438013 + Math.log(3)) / 2;
    expect(run('cross_entropy', [logits, labels]).out[0]).toBeCloseTo(expected, 14);
    // f32 buffers: logits exact, result rounded once.
    expect(run('cross_entropy', [logits, labels], {}, { dtype: 'f32' }).out[0]).toBe(Math.fround(expected));
  });

  it('cross_entropy is stable for large logits and rejects labels that are not class indices', () => {
    expect(run('cross_entropy', [{ shape: [1, 2], values: [1000, 0] }, { shape: [1], values: [1] }]).out[0]).toBe(1000);
    expect(run('cross_entropy', [{ shape: [1, 2], values: [1000, 0] }, { shape: [1], values: [0] }]).out[0]).toBe(0);
    expect(() => run('cross_entropy', [{ shape: [1, 2], values: [0, 0] }, { shape: [1], values: [2] }])).toThrow(/label 2/);
    expect(() => run('cross_entropy', [{ shape: [1, 2], values: [0, 0] }, { shape: [1], values: [0.5] }])).toThrow(/label 0.5/);
  });

  it('softmax and log_softmax along a middle dim match the naive formula, stably', () => {
    const x = rng(3).uniform(24, -5, 5);
    const naive: number[] = new Array(24);
    for (let i = 0; i < 2; i++)
      for (let k = 0; k < 4; k++) {
        const idx = [0, 1, 2].map((j) => (i * 3 + j) * 4 + k);
        const z = idx.reduce((s, t) => s + Math.exp(x[t]!), 0);
        for (const t of idx) naive[t] = Math.exp(x[t]!) / z;
      }
    expectClose(run('softmax', [{ shape: [2, 3, 4], values: x }], { dim: 1 }).out, naive, 1e-15);
    expectClose(run('log_softmax', [{ shape: [2, 3, 4], values: x }], { dim: 1 }).out, naive.map(Math.log), 1e-14);
    // exp(1000) overflows; the max subtraction keeps it finite.
    expect(run('softmax', [{ shape: [2], values: [1000, 1000] }], { dim: 0 }).out).toEqual([0.5, 0.5]);
    expect(run('log_softmax', [{ shape: [2], values: [1000, 0] }], { dim: 0 }).out).toEqual([0, -1000]);
  });
});

describe('batch norm', () => {
  it('hand-computed on [2, 2]: biased variance, gamma and beta', () => {
    const x = { shape: [2, 2], values: [1, 2, 3, 6] };
    // Channel 0: {1, 3}: mean 2, var 1. Channel 1: {2, 6}: mean 4, var 4.
    expect(run('batch_mean', [x]).out).toEqual([2, 4]);
    expect(run('batch_var', [x, { shape: [2], values: [2, 4] }]).out).toEqual([1, 4]);
    const y = run('batch_norm', [x, { shape: [2], values: [2, 4] }, { shape: [2], values: [1, 4] }, { shape: [2], values: [1, 2] }, { shape: [2], values: [0, 1] }], { eps: 0 });
    expect(y.out).toEqual([-1, -1, 1, 3]);
  });

  it('4-d statistics and normalisation match a naive per-channel formula', () => {
    const r = rng(11);
    const [N, C, H, W] = [3, 2, 2, 3];
    const xv = r.uniform(N * C * H * W);
    const gamma = r.uniform(C);
    const beta = r.uniform(C);
    const x = { shape: [N, C, H, W], values: xv };
    const perChannel = (c: number) => {
      const vals: number[] = [];
      for (let n = 0; n < N; n++) vals.push(...xv.slice((n * C + c) * H * W, (n * C + c + 1) * H * W));
      return vals;
    };
    const mean = [0, 1].map((c) => perChannel(c).reduce((s, v) => s + v, 0) / (N * H * W));
    const variance = [0, 1].map((c) => perChannel(c).reduce((s, v) => s + (v - mean[c]!) ** 2, 0) / (N * H * W));
    expectClose(run('batch_mean', [x]).out, mean, 1e-15);
    expectClose(run('batch_var', [x, { shape: [C], values: mean }]).out, variance, 1e-15);
    const eps = 1e-5;
    const y = run('batch_norm', [x, { shape: [C], values: mean }, { shape: [C], values: variance }, { shape: [C], values: gamma }, { shape: [C], values: beta }], { eps });
    const expected = xv.map((v, i) => {
      const c = Math.floor(i / (H * W)) % C;
      return ((v - mean[c]!) / Math.sqrt(variance[c]! + eps)) * gamma[c]! + beta[c]!;
    });
    expectClose(y.out, expected, 1e-14);
  });
});

describe('dropout', () => {
  const n = 10_000;
  const x = Array.from({ length: n }, (_, i) => 1 + (i % 7));
  function drop(p: number, step: number, stream: number, seed: number, dtype: 'f32' | 'f64' = 'f32') {
    const { b, id } = withParams({ x: [n] });
    const y = b.op('dropout', [id.x!, b.op('input', [], { name: 'step', shape: [] })], { p, stream });
    return [...executeGraph(b, { step: [step] }, { x }, { dtype, seed })[y]!];
  }
  const mask = (v: number[]) => v.map((e) => (e === 0 ? 0 : 1)).join('');

  it('keeps about 1-p of the elements and scales them by 1/(1-p)', () => {
    for (const p of [0.1, 0.3, 0.5, 0.8]) {
      const y = drop(p, 0, 0, 42, 'f64');
      const kept = y.filter((v) => v !== 0).length / n;
      // Binomial: sd = sqrt(p(1-p)/n) <= 0.005; 0.025 is 5 sd.
      expect(Math.abs(kept - (1 - p))).toBeLessThan(0.025);
      expect(y.every((v, i) => v === 0 || v === x[i]! * (1 / (1 - p)))).toBe(true);
    }
    // f32: scaled by the f32 scale, product rounded to f32.
    const y32 = drop(0.3, 0, 0, 42, 'f32');
    expect(y32.every((v, i) => v === 0 || v === Math.fround(x[i]! * Math.fround(1 / 0.7)))).toBe(true);
    expect(drop(0, 5, 0, 42)).toEqual(x);
  });

  it('the mask is a function of (seed, step, stream): equal for equal keys, different otherwise', () => {
    const base = mask(drop(0.5, 3, 0, 42));
    expect(mask(drop(0.5, 3, 0, 42))).toBe(base);
    for (const other of [drop(0.5, 4, 0, 42), drop(0.5, 3, 1, 42), drop(0.5, 3, 0, 43)]) {
      const m = mask(other);
      let same = 0;
      for (let i = 0; i < n; i++) if (m[i] === base[i]) same++;
      // Independent masks agree on about half the elements (p = 0.5).
      expect(Math.abs(same / n - 0.5)).toBeLessThan(0.025);
    }
  });
});

describe('adam_step', () => {
  const attrs = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
  it('matches torch.optim.Adam (1.13): step 4 (t = 5)', () => {
    // 0.5 - 0.01/(1 - 0.9^5) · 0.02/(sqrt(0.0003)/sqrt(1 - 0.999^5) + 1e-8); torch.optim.Adam on
    // an f64 parameter with this exp_avg/exp_avg_sq printed the same 0.49800815496733086.
    const { out } = run('adam_step', [{ shape: [1], values: [0.5] }, { shape: [1], values: [0.02] }, { shape: [1], values: [0.0003] }, { shape: [], values: [4] }], attrs);
    expect(out[0]).toBeCloseTo(0.49800815496733086, 15);
  });

  it('first step (t = 1) moves each parameter by lr·sign(g), up to eps', () => {
    const g = [1, 0.5, -3];
    const { out } = run('adam_step', [{ shape: [3], values: [1, -2, 0.5] }, { shape: [3], values: g.map((v) => 0.1 * v) }, { shape: [3], values: g.map((v) => 0.001 * v * v) }, { shape: [], values: [0] }], attrs);
    expectClose(out, [1 - 0.01, -2 - 0.01, 0.5 + 0.01], 1e-9);
  });
});

describe('executeGraph', () => {
  function graph() {
    const { b, id } = withParams({ w: [3] });
    const x = b.op('input', [], { name: 'x', shape: [2, 3] });
    const y = b.op('mul', [x, id.w!]);
    const c = b.constant(2);
    const z = b.op('mul', [y, c]);
    return { b, x, y, z };
  }

  it('fills inputs from feeds, params from a Map or a Record, consts from attrs; f32 by default', () => {
    const { b, z } = graph();
    const feeds = { x: [1, 2, 3, 4, 5, 6] };
    const fromMap = executeGraph(b, feeds, new Map([['w', [1, 0.5, 0.1]]]));
    const fromRecord = executeGraph(b, feeds, { w: [1, 0.5, 0.1] });
    expect(fromMap[z]).toBeInstanceOf(Float32Array);
    expect([...fromMap[z]!]).toEqual([2, 2, 0.6, 8, 5, 1.2].map(Math.fround));
    expect([...fromRecord[z]!]).toEqual([...fromMap[z]!]);
    expect(executeGraph(b, feeds, { w: [1, 1, 1] }, { dtype: 'f64' })[z]).toBeInstanceOf(Float64Array);
    expect(fromMap.length).toBe(b.nodes.length);
  });

  it('names the missing or wrong-sized feed or state tensor and the expected size', () => {
    const { b } = graph();
    expect(() => executeGraph(b, {}, { w: [1, 2, 3] })).toThrow(/missing feed 'x'.*expected 6 values.*\[2, 3\]/);
    expect(() => executeGraph(b, { x: [1, 2, 3] }, { w: [1, 2, 3] })).toThrow(/feed 'x' has 3 values, expected 6 values/);
    expect(() => executeGraph(b, { x: iota(6) }, {})).toThrow(/missing state tensor 'w'.*expected 3 values/);
    expect(() => executeGraph(b, { x: iota(6) }, new Map([['w', [1, 2]]]))).toThrow(/state tensor 'w' has 2 values, expected 3 values/);
  });

  it('rejects an op it has no kernel for', () => {
    const node: Node = { id: 0, op: 'no_such_op', inputs: [], attrs: {}, shape: [1], phase: 'forward' };
    expect(() => executeGraph({ nodes: [node] }, {}, {})).toThrow(/no kernel for op 'no_such_op'/);
  });

  it('numel of every value matches its node shape', () => {
    const { b } = graph();
    const v = executeGraph(b, { x: iota(6) }, { w: [1, 2, 3] });
    b.nodes.forEach((n) => expect(v[n.id]!.length).toBe(numel(n.shape)));
  });
});
