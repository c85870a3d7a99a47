import { num } from '../../../ir/op.ts';
import type { Fn, X } from '../emitter.ts';
import type { KernelCtx } from '../kernel.ts';
import { opKernel } from '../expr.ts';
import { emitReduce } from '../map.ts';
import { allButChannel, channelView } from './channels.ts';

/**
 * Partial derivatives of batch_norm with the other inputs held fixed, r = 1/sqrt(var + eps):
 *   x: g·γ·r   mean: -Σ g·γ·r   var: -½ Σ g·γ·(x-μ)·r³   gamma: Σ g·(x-μ)·r
 * Inputs (g, x, mean, var, gamma). The per-channel factors are recomputed per vector: batch norm
 * is not where the time goes.
 */
export function batchNormGrad(c: KernelCtx): void {
  const x = c.inShape(1);
  const { e } = c;
  const eps = num(c.k.attrs, 'eps');
  const wrt = c.k.attrs.wrt;
  const ch = channelView(x);
  const ins = [
    { addr: c.inAddr(0), shape: x },
    { addr: c.inAddr(1), shape: x },
    ...[2, 3, 4].map((i) => ({ addr: c.inAddr(i), shape: ch })),
  ];
  const rOf = (variance: X) => e.vdiv(e.vconst(1), e.m.f32x4.sqrt(e.vadd(variance, e.vconst(eps))));
  if (wrt === 'x') return opKernel(c);
  let f: (v: X[], fn: Fn) => X;
  if (wrt === 'mean') f = ([g, , , variance, gamma]) => e.m.f32x4.neg(e.vmul(e.vmul(g!, gamma!), rOf(variance!)));
  else if (wrt === 'var')
    f = ([g, v, mean, variance, gamma], fn) => {
      const r = fn.v128();
      const r3 = e.vmul(e.vmul(r.tee(rOf(variance!)), r.get()), r.get());
      return e.vmul(e.vmul(e.vmul(e.vmul(g!, gamma!), e.vsub(v!, mean!)), r3), e.vconst(-0.5));
    };
  else if (wrt === 'gamma') f = ([g, v, mean, variance]) => e.vmul(e.vmul(g!, e.vsub(v!, mean!)), rOf(variance!));
  else throw new Error(`batch_norm_grad: unknown wrt ${String(wrt)}`);
  emitReduce(c, { domain: x, reduced: allButChannel(x), out: c.outAddr(0), ins, f });
}
