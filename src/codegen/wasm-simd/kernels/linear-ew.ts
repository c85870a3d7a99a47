import { emitExpr } from '../expr.ts';
import { input, output, type KernelCtx } from '../kernel.ts';
import { linearInto } from './linear.ts';

/** acc = x·wᵀ + b, then the elementwise epilogue over [N, O] (acc read back from scratch). */
export function linearEw(c: KernelCtx): void {
  const bias = c.k.attrs.bias === true;
  const [N] = c.inShape(0) as [number];
  const [O] = c.inShape(1) as [number];
  const acc = { addr: c.sharedScratch(4 * N * O), shape: [N, O] };
  linearInto(c, input(c, 0), input(c, 1), bias ? input(c, 2) : undefined, acc);
  emitExpr(c, acc.shape, c.k.expr!, { inputs: c.k.inputs.map((_, i) => input(c, i)), acc }, c.k.outputs.map((_, i) => output(c, i)));
}
