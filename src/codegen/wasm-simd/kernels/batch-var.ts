import type { KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';
import { allButChannel, channelView, perChannel } from './channels.ts';

/** Per-channel biased variance Σ(x - mean)²/count given the mean (two passes: no cancellation). */
export function batchVar(c: KernelCtx): void {
  const x = c.inShape(0);
  const count = perChannel(x);
  const { e } = c;
  emitReduce(c, {
    domain: x,
    reduced: allButChannel(x),
    out: c.outAddr(0),
    ins: [
      { addr: c.inAddr(0), shape: x },
      { addr: c.inAddr(1), shape: channelView(x) },
    ],
    f: ([v, mean], fn) => {
      const d = fn.v128();
      return e.vmul(d.tee(e.vsub(v!, mean!)), d.get());
    },
    post: (s) => e.m.f32.div(s, e.f32(count)),
  });
}
