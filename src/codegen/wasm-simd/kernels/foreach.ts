import { numel } from '../../../ir/shape.ts';
import { exprBody } from '../expr.ts';
import { input, output, PARALLEL_MIN, type KernelCtx } from '../kernel.ts';

/**
 * One expression over several groups of tensors (the optimizer update of every parameter), in
 * one phase: large groups are split across all threads, small ones are dealt out whole, one
 * thread each in turn, so a model's many biases do not each cost every thread a loop.
 */
export function foreach(c: KernelCtx): void {
  const { k } = c;
  const [T, A, B] = [k.attrs.groups as number, k.attrs.groupInputs as number, k.attrs.groupOutputs as number];
  const shared = k.inputs.slice(T * A).map((_, i) => input(c, T * A + i));
  c.phase((fn, tid) => {
    let small = 0;
    return Array.from({ length: T }, (_, t) => {
      const ins = [...Array.from({ length: A }, (_, i) => input(c, t * A + i)), ...shared];
      const outs = Array.from({ length: B }, (_, i) => output(c, t * B + i));
      const domain = outs[0]!.shape;
      const thread = numel(domain) >= PARALLEL_MIN ? 0 : small++;
      return exprBody(c, fn, tid, domain, k.expr!, { inputs: ins }, outs, thread);
    }).flat();
  });
}
