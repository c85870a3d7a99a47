import { num } from '../../../ir/op.ts';
import { mapKernel } from '../map.ts';

/** alpha·a + beta·b: Adam's moments, SGD momentum, running statistics. */
export const axpby = mapKernel((e, [a, b], c) => {
  const alpha = num(c.k.attrs, 'alpha');
  const beta = num(c.k.attrs, 'beta');
  return e.vadd(e.vmul(e.vconst(alpha), a!), e.vmul(e.vconst(beta), b!));
});
