import { defineElementwise, P } from '../elementwise.ts';
import { ints, num } from '../op.ts';
import { broadcastShapes, fmtShape, sameShape } from '../shape.ts';

// Arithmetic, activations and the optimizer's updates: the shape rule, template and gradient of
// each elementwise op, one entry apiece. Broadcast operands get their gradients summed back to
// their shapes by defineElementwise.

export const add = defineElementwise({ name: 'add', doc: 'a + b, broadcasting', arity: 2, template: ([a, b]) => P.add(a!, b!), grad: (_, __, g) => [g, g] });
export const sub = defineElementwise({ name: 'sub', doc: 'a - b, broadcasting', arity: 2, template: ([a, b]) => P.sub(a!, b!), grad: (b, _, g) => [g, b.op('neg', [g])] });
export const mul = defineElementwise({
  name: 'mul',
  doc: 'a * b, broadcasting',
  arity: 2,
  template: ([a, b]) => P.mul(a!, b!),
  grad: (b, n, g) => [b.op('mul', [g, n.inputs[1]!]), b.op('mul', [g, n.inputs[0]!])],
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
});

export const neg = defineElementwise({ name: 'neg', doc: '-x', arity: 1, template: ([x]) => P.neg(x!), grad: (b, _, g) => [b.op('neg', [g])] });
// d sqrt(x) = 1/(2·sqrt(x)): reads the output, as torch's sqrt backward does.
export const sqrt = defineElementwise({
  name: 'sqrt',
  doc: 'sqrt(x)',
  arity: 1,
  template: ([x]) => P.sqrt(x!),
  grad: (b, n, g) => [b.op('div', [g, b.op('mul', [n.id, b.op('const', [], { value: 2 })])])],
});
// x < 0 ? 0 : x keeps NaN, as torch.relu does. The mask of the gradient is read from the output,
// as PyTorch's threshold_backward does: no extra buffer.
export const relu = defineElementwise({
  name: 'relu',
  doc: 'max(x, 0)',
  arity: 1,
  template: ([x]) => P.select(P.lt(x!, 0), 0, x!),
  derivatives: [(g, _, y) => P.select(P.gt(y, 0), g, 0)],
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
