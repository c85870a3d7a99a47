import { defineElementwise } from '../elementwise.ts';
import { ints, num } from '../op.ts';
import { fmtShape } from '../shape.ts';

/**
 * A tensor of `shape` holding each element's coordinate along `dim`: torch.arange, and with two
 * of them the triangles of torch.tril/triu. Constant tensors are elementwise ops of no operand
 * over the `index` primitive rather than data: they fuse into a consumer of their shape and take
 * no memory, and a Program needs no tensor constants (see README, "Constant tensors").
 */
export const iota = defineElementwise({
  name: 'iota',
  doc: "each element's coordinate along dim, as f32",
  arity: 0,
  shape: (_, a) => {
    const shape = ints(a, 'shape');
    const dim = num(a, 'dim');
    if (!Number.isInteger(dim) || dim < 0 || dim >= shape.length) throw new Error(`iota: dim ${dim} out of range for ${fmtShape(shape)}`);
    return shape;
  },
  template: (_, a, ctx) => ctx.index(num(a, 'dim') - ints(a, 'shape').length),
});
