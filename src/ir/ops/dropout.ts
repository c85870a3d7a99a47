import { defineElementwise, P } from '../elementwise.ts';
import { num } from '../op.ts';
import { Stream } from '../rng.ts';
import { fmtShape, numel } from '../shape.ts';

/**
 * Inverted dropout: keeps each element with probability 1-p and scales it by 1/(1-p), as
 * PyTorch does. The keep mask is drawn from the counter-based RNG keyed by (seed, step, stream,
 * element index), where `stream` numbers the dropout sites of the model and `step` is the step
 * input: every backend recomputes the same mask, and backward applies it again instead of
 * storing it. Keep iff uniform = bits24·2^-24 >= p, i.e. bits24 >= ceil(p·2^24): exact in f32.
 */
export const dropout = defineElementwise({
  name: 'dropout',
  doc: 'x * mask / (1-p), mask ~ Bernoulli(1-p) from (seed, step, stream, index)',
  arity: 2,
  shape: ([x, step], a) => {
    const p = num(a, 'p');
    if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
    num(a, 'stream');
    if (numel(step!) !== 1) throw new Error(`dropout step input must be a scalar, got ${fmtShape(step!)}`);
    return x!;
  },
  template: ([x, step], a) => {
    const p = num(a, 'p');
    const keep = P.ge(P.rng(step!, Stream.DROPOUT + num(a, 'stream')), Math.ceil(p * 2 ** 24));
    return P.select(keep, P.mul(x!, 1 / (1 - p)), 0);
  },
  // The same mask and scale applied to the gradient is the exact derivative.
  grad: (b, n, g) => [b.op('dropout', [g, n.inputs[1]!], n.attrs), undefined],
});
