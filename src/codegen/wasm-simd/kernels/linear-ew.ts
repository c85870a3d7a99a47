import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { epilogueAround } from '../expr.ts';
import { ats, type KernelCtx } from '../kernel.ts';
import { linearInto } from './linear.ts';

/** acc = x·wᵀ + b, then the elementwise epilogue over [N, O] (acc read back from memory: epilogueAround). */
export function linearEw(c: KernelCtx): void {
  const k = ats(c);
  const { inputs: { x, w, b }, outputs: { results }, expr } = KERNEL_KINDS.linear_ew.read(k);
  const [N] = x.shape as [number];
  const [O] = w.shape as [number];
  const { acc, emit } = epilogueAround(c, [N, O], expr, results);
  linearInto(c, x, w, b, acc);
  emit({ inputs: k.inputs });
}
