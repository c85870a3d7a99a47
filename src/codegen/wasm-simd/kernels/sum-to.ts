import type { KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';

/** The adjoint of broadcasting: sums the dimensions `shape` broadcasts along (leading ones and size 1). */
export function sumTo(c: KernelCtx): void {
  const x = c.inShape(0);
  const to = c.outShape(0);
  const lead = x.length - to.length;
  emitReduce(c, { domain: x, reduced: x.map((_, d) => d < lead || to[d - lead] === 1), out: c.outAddr(0), ins: [{ addr: c.inAddr(0), shape: x }], f: ([v]) => v! });
}
