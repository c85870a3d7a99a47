import { defineElementwise, P, type V } from '../elementwise.ts';
import type { Attrs } from '../graph.ts';
import { num } from '../op.ts';

// Activations: template, gradient and model API of each, one entry apiece. Formulas and their
// order of operations are ATen's CPU kernels (PyTorch 1.13), so f32 results round alike; the
// derivative at a kink is PyTorch's convention (test/fixtures/pytorch/elementwise.json records
// both).

const INPLACE = { name: 'inplace', default: false, ignored: true } as const;

/**
 * log(1 + u), exact for small u: Goldberg's trick (w - 1 is exact, and corrects log's rounding of
 * w). Past 2^24, 1 + u is u in f32, and log u keeps u = Inf from making Inf/Inf.
 */
function log1p(u: V): V {
  const w = P.add(u, 1);
  return P.select(P.eq(w, 1), u, P.select(P.gt(u, 2 ** 24), P.log(u), P.mul(P.log(w), P.div(u, P.sub(w, 1)))));
}

/** exp(x) - 1, accurate near 0 (Kahan's (u - 1)·x / log u); past |x| = 0.5 the subtraction loses nothing. */
function expm1(x: V): V {
  const u = P.exp(x);
  const near0 = P.select(P.eq(u, 1), x, P.div(P.mul(P.sub(u, 1), x), P.log(u)));
  return P.select(P.lt(P.abs(x), 0.5), near0, P.sub(u, 1));
}

/** 1 / (1 + exp(-x)), as ATen writes it. */
const sigmoidOf = (x: V): V => P.div(1, P.add(1, P.exp(P.neg(x))));

// x < 0 ? 0 : x keeps NaN, as torch.relu does. The mask of the gradient is read from the output,
// as PyTorch's threshold_backward does: no extra buffer.
export const relu = defineElementwise({
  name: 'relu',
  doc: 'max(x, 0)',
  arity: 1,
  template: ([x]) => P.select(P.lt(x!, 0), 0, x!),
  derivatives: [(g, _, y) => P.select(P.gt(y, 0), g, 0)],
  api: { method: 'relu', functional: 'relu', module: 'ReLU', params: [INPLACE] },
});

export const sigmoid = defineElementwise({
  name: 'sigmoid',
  doc: '1 / (1 + exp(-x))',
  arity: 1,
  template: ([x]) => sigmoidOf(x!),
  derivatives: [(g, _, y) => P.mul(P.mul(g, P.sub(1, y)), y)],
  api: { method: 'sigmoid', functional: 'sigmoid', module: 'Sigmoid' },
});

export const tanh = defineElementwise({
  name: 'tanh',
  doc: 'tanh(x)',
  arity: 1,
  template: ([x]) => P.tanh(x!),
  derivatives: [(g, _, y) => P.mul(g, P.sub(1, P.mul(y, y)))],
  api: { method: 'tanh', functional: 'tanh', module: 'Tanh' },
});

// GELU's constants as ATen spells them (M_SQRT1_2, M_2_SQRTPI, M_SQRT2), products in f64.
const SQRT1_2 = Math.SQRT1_2;
const PDF_SCALE = (2 / Math.sqrt(Math.PI)) * Math.SQRT1_2 * 0.5; // 1/sqrt(2π)
const TANH_BETA = Math.SQRT2 * (2 / Math.sqrt(Math.PI)) * 0.5; // sqrt(2/π)
const TANH_KAPPA = 0.044715;

const tanhApprox = (at: Attrs) => at.approximate === 'tanh';

export const gelu = defineElementwise({
  name: 'gelu',
  doc: 'x·Φ(x) (approximate: none | tanh)',
  arity: 1,
  template: ([x], at) => {
    if (!tanhApprox(at)) return P.mul(P.mul(x!, 0.5), P.add(1, P.erf(P.mul(x!, SQRT1_2))));
    const inner = P.mul(TANH_BETA, P.add(x!, P.mul(TANH_KAPPA, P.mul(P.mul(x!, x!), x!))));
    return P.mul(P.mul(0.5, x!), P.add(1, P.tanh(inner)));
  },
  derivatives: [
    (g, [x], _, at) => {
      if (!tanhApprox(at)) {
        const cdf = P.mul(0.5, P.add(1, P.erf(P.mul(x!, SQRT1_2))));
        const pdf = P.mul(P.exp(P.mul(P.mul(-0.5, x!), x!)), PDF_SCALE);
        return P.mul(g, P.add(cdf, P.mul(x!, pdf)));
      }
      const sq = P.mul(x!, x!);
      const t = P.tanh(P.mul(TANH_BETA, P.add(x!, P.mul(TANH_KAPPA, P.mul(sq, x!)))));
      const left = P.mul(0.5, x!);
      const dInner = P.mul(TANH_BETA, P.add(1, P.mul(3 * TANH_KAPPA, sq)));
      const right = P.mul(P.mul(left, P.sub(1, P.mul(t, t))), dInner);
      return P.mul(g, P.add(P.mul(0.5, P.add(1, t)), right));
    },
  ],
  api: {
    functional: 'gelu',
    module: 'GELU',
    params: [{ name: 'approximate', default: 'none', oneOf: ['none', 'tanh'] }],
  },
});

export const silu = defineElementwise({
  name: 'silu',
  doc: 'x·sigmoid(x)',
  arity: 1,
  template: ([x]) => P.div(x!, P.add(1, P.exp(P.neg(x!)))),
  derivatives: [
    (g, [x]) => {
      const s = sigmoidOf(x!);
      return P.mul(P.mul(g, s), P.add(1, P.mul(x!, P.sub(1, s))));
    },
  ],
  api: { functional: 'silu', module: 'SiLU', params: [INPLACE] },
});

export const leaky_relu = defineElementwise({
  name: 'leaky_relu',
  doc: 'x > 0 ? x : negativeSlope·x',
  arity: 1,
  template: ([x], at) => P.select(P.gt(x!, 0), x!, P.mul(x!, num(at, 'negativeSlope'))),
  derivatives: [(g, [x], _, at) => P.select(P.gt(x!, 0), g, P.mul(g, num(at, 'negativeSlope')))],
  sampleAttrs: { negativeSlope: 0.01 },
  api: { functional: 'leakyRelu', module: 'LeakyReLU', params: [{ name: 'negativeSlope', default: 0.01 }, INPLACE] },
});

export const elu = defineElementwise({
  name: 'elu',
  doc: 'x > 0 ? x : alpha·(exp(x) - 1)',
  arity: 1,
  template: ([x], at) => P.select(P.gt(x!, 0), x!, P.mul(expm1(x!), num(at, 'alpha'))),
  // From x, as elu_backward with is_result=false; at 0 the left branch (alpha), as PyTorch.
  derivatives: [(g, [x], _, at) => P.select(P.gt(x!, 0), g, P.mul(P.mul(g, num(at, 'alpha')), P.exp(x!)))],
  sampleAttrs: { alpha: 1 },
  api: { functional: 'elu', module: 'ELU', params: [{ name: 'alpha', default: 1 }, INPLACE] },
});

export const softplus = defineElementwise({
  name: 'softplus',
  doc: 'log(1 + exp(beta·x)) / beta, x past threshold/beta',
  arity: 1,
  template: ([x], at) => {
    const bx = P.mul(x!, num(at, 'beta'));
    return P.select(P.gt(bx, num(at, 'threshold')), x!, P.div(log1p(P.exp(bx)), num(at, 'beta')));
  },
  derivatives: [
    (g, [x], _, at) => {
      const bx = P.mul(x!, num(at, 'beta'));
      const z = P.exp(bx);
      return P.select(P.gt(bx, num(at, 'threshold')), g, P.div(P.mul(g, z), P.add(z, 1)));
    },
  ],
  sampleAttrs: { beta: 1, threshold: 20 },
  api: {
    functional: 'softplus',
    module: 'Softplus',
    params: [
      { name: 'beta', default: 1 },
      { name: 'threshold', default: 20 },
    ],
    check: (at) => (at.beta === 0 ? 'beta must not be 0' : undefined),
  },
});

// x·tanh(softplus(x)), with ATen's backward: tanh(sp) + x·sigmoid(x)·(1 - tanh(sp)²).
export const mish = defineElementwise({
  name: 'mish',
  doc: 'x·tanh(log(1 + exp(x)))',
  arity: 1,
  template: ([x]) => P.mul(x!, P.tanh(log1p(P.exp(x!)))),
  derivatives: [
    (g, [x]) => {
      const t = P.tanh(log1p(P.exp(x!)));
      return P.mul(g, P.add(t, P.mul(P.mul(x!, sigmoidOf(x!)), P.sub(1, P.mul(t, t)))));
    },
  ],
  api: { functional: 'mish', module: 'Mish', params: [INPLACE] },
});
