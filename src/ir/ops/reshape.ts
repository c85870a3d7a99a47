import { defineOp, ints } from '../op.ts';
import { fmtShape, numel } from '../shape.ts';

export const reshape = defineOp({
  name: 'reshape',
  doc: 'same data, new shape (row-major, like torch.view)',
  arity: 1,
  shape: ([x], a) => {
    const s = ints(a, 'shape');
    if (numel(s) !== numel(x!)) throw new Error(`cannot view ${fmtShape(x!)} (${numel(x!)} elements) as ${fmtShape(s)} (${numel(s)} elements)`);
    return s;
  },
  flops: () => 0,
  grad: (b, node, g) => [b.op('reshape', [g], { shape: b.node(node.inputs[0]!).shape })],
});
