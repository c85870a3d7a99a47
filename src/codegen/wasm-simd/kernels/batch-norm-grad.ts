import { num } from '../../../ir/op.ts';
import type { Emitter, Fn, X } from '../emitter.ts';
import type { KernelCtx } from '../kernel.ts';
import { opKernel } from '../expr.ts';
import { emitReduce, type Operand } from '../map.ts';
import { allButChannel, channelView } from './channels.ts';

/** A per-channel partial's term at a vector of (g, x, mean, var, gamma). */
export type PartialTerm = (v: X[], fn: Fn) => X;

/**
 * The term summed for batch_norm's partial wrt mean, var or gamma (and Σ g for beta),
 * r = 1/sqrt(var + eps):
 *   mean: -Σ g·γ·r   var: -½ Σ g·γ·(x-μ)·r³   gamma: Σ g·(x-μ)·r   beta: Σ g
 * The per-channel factors are recomputed per vector: batch norm is not where the time goes.
 */
export function partialTerm(e: Emitter, wrt: string, eps: number): PartialTerm {
  const rOf = (variance: X) => e.vdiv(e.vconst(1), e.m.f32x4.sqrt(e.vadd(variance, e.vconst(eps))));
  if (wrt === 'beta') return ([g]) => g!;
  if (wrt === 'mean') return ([g, , , variance, gamma]) => e.m.f32x4.neg(e.vmul(e.vmul(g!, gamma!), rOf(variance!)));
  if (wrt === 'var')
    return ([g, v, mean, variance, gamma], fn) => {
      const r = fn.v128();
      const r3 = e.vmul(e.vmul(r.tee(rOf(variance!)), r.get()), r.get());
      return e.vmul(e.vmul(e.vmul(e.vmul(g!, gamma!), e.vsub(v!, mean!)), r3), e.vconst(-0.5));
    };
  if (wrt === 'gamma') return ([g, v, mean, variance]) => e.vmul(e.vmul(g!, e.vsub(v!, mean!)), rOf(variance!));
  throw new Error(`batch_norm_grad: unknown wrt ${String(wrt)}`);
}

/** batch_norm_grad's operands (g, x, mean, var, gamma) as a reduction reads them: the last three per channel. */
export function partialOperands(addrs: readonly number[], x: readonly number[]): Operand[] {
  const ch = channelView(x);
  return addrs.map((addr, i) => ({ addr, shape: i < 2 ? x : ch }));
}

/**
 * Partial derivatives of batch_norm with the other inputs held fixed (partialTerm); wrt x, the
 * elementwise g·γ·r. Inputs (g, x, mean, var, gamma).
 */
export function batchNormGrad(c: KernelCtx): void {
  if (c.k.attrs.wrt === 'x') return opKernel(c);
  const x = c.inShape(1);
  const f = partialTerm(c.e, String(c.k.attrs.wrt), num(c.k.attrs, 'eps'));
  emitReduce(c, { domain: x, reduced: allButChannel(x), out: c.outAddr(0), ins: partialOperands([0, 1, 2, 3, 4].map((i) => c.inAddr(i)), x), f });
}
