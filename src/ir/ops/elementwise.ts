import type { Attrs } from '../graph.ts';
import { defineElementwise, P, type V } from '../elementwise.ts';
import { ints, num } from '../op.ts';
import { broadcastShapes, fmtShape, sameShape } from '../shape.ts';

// Arithmetic, activations and the optimizer's updates: the shape rule, template and gradient of
// each elementwise op, one entry apiece. Broadcast operands get their gradients summed back to
// their shapes by defineElementwise.

export const add = defineElementwise({ name: 'add', doc: 'a + b, broadcasting', arity: 2, template: ([a, b]) => P.add(a!, b!), grad: (_, __, g) => [g, g], api: { method: 'add' } });
export const sub = defineElementwise({ name: 'sub', doc: 'a - b, broadcasting', arity: 2, template: ([a, b]) => P.sub(a!, b!), grad: (b, _, g) => [g, b.op('neg', [g])], api: { method: 'sub' } });
export const mul = defineElementwise({
  name: 'mul',
  doc: 'a * b, broadcasting',
  arity: 2,
  template: ([a, b]) => P.mul(a!, b!),
  grad: (b, n, g) => [b.op('mul', [g, n.inputs[1]!]), b.op('mul', [g, n.inputs[0]!])],
  api: { method: 'mul' },
});
export const div = defineElementwise({
  name: 'div',
  doc: 'a / b, broadcasting',
  arity: 2,
  template: ([a, b]) => P.div(a!, b!),
  grad: (b, n, g) => {
    const ga = b.op('div', [g, n.inputs[1]!]);
    // d(a/b)/db = -(a/b)/b, so the b-gradient is -(g/b)·out: reuses ga and the output.
    return [ga, b.op('neg', [b.op('mul', [ga, n.id])])];
  },
  api: { method: 'div' },
});

export const neg = defineElementwise({ name: 'neg', doc: '-x', arity: 1, template: ([x]) => P.neg(x!), grad: (b, _, g) => [b.op('neg', [g])], api: { method: 'neg' } });
// d sqrt(x) = 1/(2·sqrt(x)): reads the output, as torch's sqrt backward does.
export const sqrt = defineElementwise({
  name: 'sqrt',
  doc: 'sqrt(x)',
  arity: 1,
  template: ([x]) => P.sqrt(x!),
  grad: (b, n, g) => [b.op('div', [g, b.op('mul', [n.id, b.op('const', [], { value: 2 })])])],
  api: { method: 'sqrt' },
});
/** Broadcast to a larger shape (torch.expand): the template is the operand itself, read broadcast. */
export const expand = defineElementwise({
  name: 'expand',
  doc: 'broadcast to shape',
  arity: 1,
  shape: ([x], a) => {
    const s = ints(a, 'shape');
    const out = broadcastShapes(x!, s);
    if (!out || out.some((d, i) => d !== s[i])) throw new Error(`expand: cannot broadcast ${fmtShape(x!)} to ${fmtShape(s)}`);
    return s;
  },
  template: ([x]) => x,
  grad: (b, n, g) => [b.op('sum_to', [g], { shape: b.node(n.inputs[0]!).shape })],
});

/** alpha·a + beta·b on equal shapes: momentum buffers, moment estimates, running statistics. */
export const axpby = defineElementwise({
  name: 'axpby',
  doc: 'alpha*a + beta*b',
  arity: 2,
  shape: ([a, b]) => {
    if (!sameShape(a!, b!)) throw new Error(`axpby: ${fmtShape(a!)} vs ${fmtShape(b!)}`);
    return a!;
  },
  template: ([a, b], at) => P.add(P.mul(num(at, 'alpha'), a!), P.mul(num(at, 'beta'), b!)),
});

export const exp = defineElementwise({
  name: 'exp',
  doc: 'exp(x)',
  arity: 1,
  template: ([x]) => P.exp(x!),
  derivatives: [(g, _, y) => P.mul(g, y)],
  api: { method: 'exp' },
});

export const log = defineElementwise({
  name: 'log',
  doc: 'natural logarithm',
  arity: 1,
  template: ([x]) => P.log(x!),
  derivatives: [(g, [x]) => P.div(g, x!)],
  api: { method: 'log' },
});

// Gradient g·sgn(x): 0 at 0, as PyTorch's abs backward.
export const abs = defineElementwise({
  name: 'abs',
  doc: '|x|',
  arity: 1,
  template: ([x]) => P.abs(x!),
  derivatives: [(g, [x]) => P.mul(g, P.select(P.gt(x!, 0), 1, P.select(P.lt(x!, 0), -1, 0)))],
  api: { method: 'abs' },
});

/** x^e for a constant e: products for small integer exponents (exact signs), sqrt for ±½, else exp(e·log x) (NaN below 0, as pow). */
function power(x: V, e: number): V {
  if (Number.isInteger(e) && Math.abs(e) <= 16) {
    if (e === 0) return P.c(x, 1);
    let r: V | undefined;
    for (let k = 0; k < Math.abs(e); k++) r = r ? P.mul(r, x) : x;
    return e > 0 ? r! : P.div(1, r!);
  }
  if (Math.abs(e) === 0.5) return e > 0 ? P.sqrt(x) : P.div(1, P.sqrt(x));
  // Integer exponents keep the sign of an odd power; for others log(x < 0) makes the NaN.
  if (!Number.isInteger(e)) return P.exp(P.mul(e, P.log(x)));
  const m = P.exp(P.mul(e, P.log(P.abs(x))));
  return e % 2 === 0 ? m : P.select(P.lt(x, 0), P.neg(m), m);
}

export const pow = defineElementwise({
  name: 'pow',
  doc: 'x^exponent (a constant)',
  arity: 1,
  template: ([x], at) => power(x!, num(at, 'exponent')),
  // exponent·x^(exponent-1), and 0 for exponent 0, as PyTorch's pow_backward.
  derivatives: [(g, [x], _, at) => (num(at, 'exponent') === 0 ? P.mul(g, 0) : P.mul(P.mul(g, num(at, 'exponent')), power(x!, num(at, 'exponent') - 1)))],
  sampleAttrs: { exponent: 2 },
  api: { method: 'pow', params: [{ name: 'exponent' }], check: (at) => (Number.isFinite(at.exponent) ? undefined : 'exponent must be a finite number') },
});

const bound = (at: Attrs, key: 'min' | 'max') => (typeof at[key] === 'number' ? (at[key] as number) : undefined);

// Lower bound, then upper (upper wins when min > max); NaN passes through. The gradient flows
// where min <= x <= max, bounds included, as PyTorch's clamp_backward.
export const clamp = defineElementwise({
  name: 'clamp',
  doc: 'min(max(x, min), max), either bound optional',
  arity: 1,
  template: ([x], at) => {
    const [lo, hi] = [bound(at, 'min'), bound(at, 'max')];
    const r = lo === undefined ? x! : P.select(P.lt(x!, lo), lo, x!);
    return hi === undefined ? r : P.select(P.gt(r, hi), hi, r);
  },
  derivatives: [
    (g, [x], _, at) => {
      const [lo, hi] = [bound(at, 'min'), bound(at, 'max')];
      const r = lo === undefined ? g : P.select(P.ge(x!, lo), g, 0);
      return hi === undefined ? r : P.select(P.le(x!, hi), r, 0);
    },
  ],
  sampleAttrs: { min: -1, max: 1 },
  api: {
    method: 'clamp',
    params: [
      { name: 'min', default: null },
      { name: 'max', default: null },
    ],
    check: (at) => (bound(at, 'min') === undefined && bound(at, 'max') === undefined ? 'at least one of min and max must be given' : undefined),
  },
});

// NaN in either operand gives NaN, as torch.minimum/maximum. A tie splits the gradient in halves;
// NaN sends all of it to both, as PyTorch's masks do.
const halfAtTies = (g: V, a: V, b: V, loses: V) => P.select(loses, 0, P.select(P.eq(a, b), P.mul(g, 0.5), g));

export const minimum = defineElementwise({
  name: 'minimum',
  doc: 'elementwise min(a, b), broadcasting',
  arity: 2,
  template: ([a, b]) => P.select(P.lt(b!, a!), b!, P.select(P.eq(b!, b!), a!, b!)),
  derivatives: [(g, [a, b]) => halfAtTies(g, a!, b!, P.gt(a!, b!)), (g, [a, b]) => halfAtTies(g, a!, b!, P.lt(a!, b!))],
  api: { method: 'minimum' },
});

export const maximum = defineElementwise({
  name: 'maximum',
  doc: 'elementwise max(a, b), broadcasting',
  arity: 2,
  template: ([a, b]) => P.select(P.gt(b!, a!), b!, P.select(P.eq(b!, b!), a!, b!)),
  derivatives: [(g, [a, b]) => halfAtTies(g, a!, b!, P.lt(a!, b!)), (g, [a, b]) => halfAtTies(g, a!, b!, P.gt(a!, b!))],
  api: { method: 'maximum' },
});

/** torch.where(cond, a, b) with cond a 0/1 tensor (a comparison's result): non-zero picks a. */
export const where = defineElementwise({
  name: 'where',
  doc: 'cond != 0 ? a : b, broadcasting',
  arity: 3,
  template: ([c, a, b]) => P.select(P.eq(c!, 0), b!, a!),
  derivatives: [undefined, (g, [c]) => P.select(P.eq(c!, 0), 0, g), (g, [c]) => P.select(P.eq(c!, 0), g, 0)],
  // x.where(cond, y), as torch.Tensor.where.
  api: { method: 'where', receiver: 1 },
});

// Comparisons give 1 or 0 (kiln's tensors are f32; PyTorch's are bool) and pass no gradient.
const comparison = <const N extends string>(name: N, doc: string, holds: (a: V, b: V) => V, then = 1) =>
  defineElementwise({ name, doc, arity: 2, template: ([a, b]) => P.select(holds(a!, b!), then, 1 - then), derivatives: [undefined, undefined], api: { method: name } });

export const gt = comparison('gt', 'a > b as 1/0', P.gt);
export const lt = comparison('lt', 'a < b as 1/0', P.lt);
export const ge = comparison('ge', 'a >= b as 1/0', P.ge);
export const le = comparison('le', 'a <= b as 1/0', P.le);
export const eq = comparison('eq', 'a == b as 1/0', P.eq);
export const ne = comparison('ne', 'a != b as 1/0 (NaN != NaN)', P.eq, 0);
