import type { KernelCtx } from '../kernel.ts';
import { at, dimOf, eachLine, elem, exp } from './lines.ts';

/** g - exp(y)·Σg along dim, y = log_softmax output. Inputs (g, y). */
export function logSoftmaxGrad(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const g = c.inAddr(0);
  const y = c.inAddr(1);
  const out = c.outAddr(0);
  c.phase((fn, tid) => {
    const s = fn.f64();
    const k = fn.i32();
    return eachLine(c, fn, tid, c.inShape(0), dimOf(c), (l) => [
      s.set(e.f64(0)),
      e.forc(k, 0, l.n, 1, [s.set(m.f64.add(s.get(), at(e, g, l, k)))]),
      e.forc(k, 0, l.n, 1, [e.storef(elem(e, out, l, k), m.f32.demote(m.f64.sub(at(e, g, l, k), m.f64.mul(exp(e, fn, at(e, y, l, k)), s.get()))))]),
    ]);
  });
}
