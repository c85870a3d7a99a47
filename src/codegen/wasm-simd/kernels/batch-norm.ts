import { num } from '../../../ir/op.ts';
import type { KernelCtx } from '../kernel.ts';
import { emitMap } from '../map.ts';
import { channelView } from './channels.ts';

/** (x - mean)·r·gamma + beta per channel, r = 1/sqrt(var + eps). */
export function batchNorm(c: KernelCtx): void {
  const x = c.inShape(0);
  const { e } = c;
  const eps = num(c.k.attrs, 'eps');
  const ch = channelView(x);
  emitMap(c, {
    out: { addr: c.outAddr(0), shape: x },
    ins: [{ addr: c.inAddr(0), shape: x }, ...[1, 2, 3, 4].map((i) => ({ addr: c.inAddr(i), shape: ch }))],
    f: ([v, mean, variance, gamma, beta]) => {
      const r = e.vdiv(e.vconst(1), e.m.f32x4.sqrt(e.vadd(variance!, e.vconst(eps))));
      return e.vadd(e.vmul(e.vmul(e.vsub(v!, mean!), r), gamma!), beta!);
    },
  });
}
