import type { Attrs } from '../graph.ts';
import { defineOp, num } from '../op.ts';
import { fmtShape, type Shape } from '../shape.ts';

function axisOf(name: string, x: Shape, a: Attrs): number {
  const dim = num(a, 'dim');
  if (!Number.isInteger(dim) || dim < 0 || dim >= x.length) throw new Error(`${name}: dim ${dim} out of range for ${fmtShape(x)}`);
  return dim;
}

/** x[..., start:end, ...] along `dim` (step 1), as a copy: torch.split's and torch.chunk's pieces. */
export const slice = defineOp({
  name: 'slice',
  doc: 'elements start..end-1 along dim (a copy)',
  arity: 1,
  shape: ([x], a) => {
    const d = axisOf('slice', x!, a);
    const [start, end] = [num(a, 'start'), num(a, 'end')];
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > x![d]! || start >= end) throw new Error(`slice: [${start}, ${end}) is not a non-empty range of dim ${d} of ${fmtShape(x!)}`);
    return x!.map((n, i) => (i === d ? end - start : n));
  },
  flops: () => 0,
  // The gradient is g in the slice's place and zeros elsewhere; pieces of one tensor each
  // contribute one such tensor, which autodiff sums.
  grad: (b, n, g) => {
    const x = b.node(n.inputs[0]!).shape;
    const d = num(n.attrs, 'dim');
    return [b.op('pad', [g], { dim: d, before: num(n.attrs, 'start'), after: x[d]! - num(n.attrs, 'end') })];
  },
});

/** Zeros before and after x along `dim`: the adjoint of slice. */
export const pad = defineOp({
  name: 'pad',
  doc: 'x with `before` zeros ahead of it and `after` behind it along dim',
  arity: 1,
  shape: ([x], a) => {
    const d = axisOf('pad', x!, a);
    const [before, after] = [num(a, 'before'), num(a, 'after')];
    if (!Number.isInteger(before) || !Number.isInteger(after) || before < 0 || after < 0) throw new Error(`pad: before ${before} and after ${after} must be non-negative integers`);
    return x!.map((n, i) => (i === d ? before + n + after : n));
  },
  flops: () => 0,
  grad: (b, n, g) => {
    const x = b.node(n.inputs[0]!).shape;
    const d = num(n.attrs, 'dim');
    const start = num(n.attrs, 'before');
    return [b.op('slice', [g], { dim: d, start, end: start + x[d]! })];
  },
});
