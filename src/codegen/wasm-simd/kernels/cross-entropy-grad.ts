import type { KernelCtx } from '../kernel.ts';
import { labelOf } from './cross-entropy.ts';
import { at, eachLine, elem, exp, log, maxAndSumExp } from './lines.ts';

/** g·(softmax(row) - onehot(label))/N, rows split across threads. Inputs (g, logits, labels). */
export function crossEntropyGrad(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const [N, K] = c.inShape(1) as [number, number];
  const g = c.inAddr(0);
  const x = c.inAddr(1);
  const labels = c.inAddr(2);
  const out = c.outAddr(0);
  c.phase((fn, tid) => {
    const max = fn.f64();
    const sum = fn.f64();
    const scale = fn.f64();
    const lab = fn.i32();
    const k = fn.i32();
    return [
      scale.set(m.f64.div(m.f64.promote(e.loadf(e.i32(g))), e.f64(N))),
      ...eachLine(c, fn, tid, [N, K], 1, (l) => [
        ...maxAndSumExp(e, fn, x, l, max, sum),
        max.set(m.f64.add(max.get(), log(e, fn, sum.get()))),
        lab.set(labelOf(e, labels, m.i32.div_u(l.base.get(), e.i32(4 * K)), K)),
        e.forc(k, 0, K, 1, [
          e.storef(elem(e, out, l, k), m.f32.demote(m.f64.mul(scale.get(), m.f64.sub(exp(e, fn, m.f64.sub(at(e, x, l, k), max.get())), m.f64.convert_u.i32(m.i32.eq(k.get(), lab.get())))))),
        ]),
      ]),
    ];
  });
}
