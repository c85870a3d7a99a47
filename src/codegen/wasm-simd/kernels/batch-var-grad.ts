import type { KernelCtx } from '../kernel.ts';
import { emitMap } from '../map.ts';
import { channelView, perChannel } from './channels.ts';

/** g[c]·2(x - mean[c])/count: the gradient of the variance flowing back to x. */
export function batchVarGrad(c: KernelCtx): void {
  const x = c.inShape(1);
  const { e } = c;
  const count = perChannel(x);
  emitMap(c, {
    out: { addr: c.outAddr(0), shape: x },
    ins: [
      { addr: c.inAddr(0), shape: channelView(x) },
      { addr: c.inAddr(1), shape: x },
      { addr: c.inAddr(2), shape: channelView(x) },
    ],
    f: ([g, v, mean]) => e.vdiv(e.vmul(e.vmul(g!, e.vconst(2)), e.vsub(v!, mean!)), e.vconst(count)),
  });
}
