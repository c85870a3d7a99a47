import type { Emitter, X } from '../emitter.ts';
import { onThread0, type KernelCtx } from '../kernel.ts';
import { at, log, maxAndSumExp, type Line } from './lines.ts';

/** Class index of row n, stored as f32; clamped into [0, K) (the runtime checks labels before a step). */
export function labelOf(e: Emitter, labels: number, n: X, K: number): X {
  const m = e.m;
  const t = m.i32.trunc_s_sat.f32(e.loadf(e.add(e.i32(labels), e.mulc(n, 4))));
  const hi = m.select(m.i32.lt_s(t, e.i32(K - 1)), e.copyExpr(t), e.i32(K - 1));
  return m.select(m.i32.gt_s(hi, e.i32(0)), e.copyExpr(hi), e.i32(0));
}

/**
 * torch.nn.CrossEntropyLoss(): mean over the batch of logsumexp(row) - row[label], in f64 with the
 * host's exp and log. One thread: N·K values.
 */
export function crossEntropy(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const [N, K] = c.inShape(0) as [number, number];
  const x = c.inAddr(0);
  const labels = c.inAddr(1);
  const out = c.outAddr(0);
  c.phase((fn, tid) => {
    const n = fn.i32();
    const base = fn.i32();
    const max = fn.f64();
    const sum = fn.f64();
    const total = fn.f64();
    const lab = fn.i32();
    const l: Line = { base, n: K, stride: 4 };
    return onThread0(e, tid, [
      total.set(e.f64(0)),
      e.forc(n, 0, N, 1, [
        base.set(e.mulc(n.get(), 4 * K)),
        ...maxAndSumExp(e, fn, x, l, max, sum),
        lab.set(labelOf(e, labels, n.get(), K)),
        total.set(m.f64.add(total.get(), m.f64.sub(m.f64.add(max.get(), log(e, fn, sum.get())), at(e, x, l, lab)))),
      ]),
      e.storef(e.i32(out), m.f32.demote(m.f64.div(total.get(), e.f64(N)))),
    ]);
  });
}
