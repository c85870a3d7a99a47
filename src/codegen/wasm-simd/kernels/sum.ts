import { ints } from '../../../ir/op.ts';
import type { KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';

/** Sum over `axes`; keepdim changes only the shape, not the layout. */
export function sum(c: KernelCtx): void {
  const x = c.inShape(0);
  const axes = ints(c.k.attrs, 'axes');
  emitReduce(c, { domain: x, reduced: x.map((_, d) => axes.includes(d)), out: c.outAddr(0), ins: [{ addr: c.inAddr(0), shape: x }], f: ([v]) => v! });
}
