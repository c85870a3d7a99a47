import { defineOp, flag, ints } from '../op.ts';
import { broadcastShapes, fmtShape, numel, type Shape } from '../shape.ts';

export const sum = defineOp({
  name: 'sum',
  doc: 'sum over axes (keepdim optional)',
  arity: 1,
  shape: ([x], a) => {
    const axes = ints(a, 'axes');
    for (const ax of axes) if (ax < 0 || ax >= x!.length) throw new Error(`sum: axis ${ax} out of range for ${fmtShape(x!)}`);
    return x!.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_, i) => flag(a, 'keepdim') || !axes.includes(i));
  },
  flops: ([x]) => numel(x!),
  grad: (b, n, g) => {
    const x = b.node(n.inputs[0]!).shape;
    const axes = ints(n.attrs, 'axes');
    const kept = x.map((d, i) => (axes.includes(i) ? 1 : d));
    const g2 = flag(n.attrs, 'keepdim') ? g : b.op('reshape', [g], { shape: kept });
    return [b.op('expand', [g2], { shape: x })];
  },
});

/** The adjoint of broadcasting: sums a gradient down to the shape its operand had. */
export const sumTo = defineOp({
  name: 'sum_to',
  doc: 'sum broadcast dimensions down to shape',
  arity: 1,
  shape: ([x], a) => {
    const s: Shape = ints(a, 'shape');
    const back = broadcastShapes(s, x!);
    if (!back || back.some((d, i) => d !== x![i])) throw new Error(`sum_to: ${fmtShape(x!)} does not reduce to ${fmtShape(s)}`);
    return s;
  },
  flops: ([x]) => numel(x!),
  grad: (b, n, g) => [b.op('expand', [g], { shape: b.node(n.inputs[0]!).shape })],
});
