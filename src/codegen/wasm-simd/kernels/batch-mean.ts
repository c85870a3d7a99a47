import type { KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';
import { allButChannel, perChannel } from './channels.ts';

/** Per-channel mean over N (and H, W). */
export function batchMean(c: KernelCtx): void {
  const x = c.inShape(0);
  const count = perChannel(x);
  emitReduce(c, { domain: x, reduced: allButChannel(x), out: c.outAddr(0), ins: [{ addr: c.inAddr(0), shape: x }], f: ([v]) => v!, post: (s) => c.e.m.f32.div(s, c.e.f32(count)) });
}
