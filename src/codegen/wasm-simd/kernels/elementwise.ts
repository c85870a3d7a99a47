import { emitExpr } from '../expr.ts';
import { input, output, type KernelCtx } from '../kernel.ts';

/** A chain of elementwise ops (Kernel.expr) in one pass: the steps stay in registers. */
export function elementwise(c: KernelCtx): void {
  const ins = c.k.inputs.map((_, i) => input(c, i));
  const outs = c.k.outputs.map((_, i) => output(c, i));
  emitExpr(c, outs[0]!.shape, c.k.expr!, { inputs: ins }, outs);
}
