import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { emitExpr } from '../expr.ts';
import { ats, type KernelCtx } from '../kernel.ts';

/** A chain of elementwise ops (Kernel.expr) in one pass: the steps stay in registers. */
export function elementwise(c: KernelCtx): void {
  const { inputs: { operands }, outputs: { results }, expr } = KERNEL_KINDS.elementwise.read(ats(c));
  emitExpr(c, results[0]!.shape, expr, { inputs: operands }, results);
}
