import type { KernelCtx } from '../kernel.ts';
import { at, dimOf, eachLine, elem, log, maxAndSumExp } from './lines.ts';

/** x - logsumexp(x) along dim. */
export function logSoftmax(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const x = c.inAddr(0);
  const y = c.outAddr(0);
  c.phase((fn, tid) => {
    const max = fn.f64();
    const sum = fn.f64();
    const k = fn.i32();
    return eachLine(c, fn, tid, c.inShape(0), dimOf(c), (l) => [
      ...maxAndSumExp(e, fn, x, l, max, sum),
      max.set(m.f64.add(max.get(), log(e, fn, sum.get()))),
      e.forc(k, 0, l.n, 1, [e.storef(elem(e, y, l, k), m.f32.demote(m.f64.sub(at(e, x, l, k), max.get())))]),
    ]);
  });
}
