import { foreachGroups } from '../../../ir/kernels.ts';
import { numel } from '../../../ir/shape.ts';
import { exprBody } from '../expr.ts';
import { ats, PARALLEL_MIN, type KernelCtx } from '../kernel.ts';

/**
 * One expression over several groups of tensors (the optimizer update of every parameter), in
 * one phase: large groups are split across all threads, small ones are dealt out whole, one
 * thread each in turn, so a model's many biases do not each cost every thread a loop.
 */
export function foreach(c: KernelCtx): void {
  const { expr, groups } = foreachGroups(ats(c));
  c.phase((fn, tid) => {
    let small = 0;
    return groups.flatMap((g) => {
      const domain = g.outputs[0]!.shape;
      const thread = numel(domain) >= PARALLEL_MIN ? 0 : small++;
      return exprBody(c, fn, tid, domain, expr, { inputs: g.inputs }, g.outputs, thread);
    });
  });
}
