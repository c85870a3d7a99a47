import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import type { X } from '../emitter.ts';
import { ats, onThread0, type At, type KernelCtx } from '../kernel.ts';
import { labelOf } from './cross-entropy.ts';
import { at, eachLine, elem, exp, log, maxAndSumExp } from './lines.ts';

/** CrossEntropyLoss (mean) and, in the same pass over each row, its gradient. */
export function softmaxCrossEntropy(c: KernelCtx): void {
  const { attrs, inputs: { logits, labels }, outputs: { loss, dlogits } } = KERNEL_KINDS.softmax_cross_entropy.read(ats(c));
  crossEntropyInto(c, logits, labels, loss, dlogits, attrs.gradScale);
}

/**
 * Rows split across threads: each row's logsumexp in f64 (the host's exp and log), its loss term
 * into scratch, and gradScale·(softmax - onehot)/N when asked; then thread 0 sums the terms in f64.
 */
export function crossEntropyInto(c: KernelCtx, logits: At, labels: At, loss: At, dlogits: At | undefined, gradScale: number): void {
  const { e } = c;
  const m = e.m;
  const [N, K] = logits.shape as [number, number];
  const scale = dlogits ? gradScale / N : 0;
  const terms = c.sharedScratch(8 * N);
  c.phase((fn, tid) => {
    const max = fn.f64();
    const sum = fn.f64();
    const lab = fn.i32();
    const k = fn.i32();
    const row = fn.i32();
    return eachLine(c, fn, tid, [N, K], 1, (l) => {
      const s: X[] = [
        ...maxAndSumExp(e, fn, logits.addr, l, max, sum),
        max.set(m.f64.add(max.get(), log(e, fn, sum.get()))),
        row.set(m.i32.div_u(l.base.get(), e.i32(4 * K))),
        lab.set(labelOf(e, labels.addr, row.get(), K)),
        m.f64.store(0, 8, e.add(e.i32(terms), e.mulc(row.get(), 8)), m.f64.sub(max.get(), at(e, logits.addr, l, lab))),
      ];
      if (dlogits)
        s.push(
          e.forc(k, 0, K, 1, [
            e.storef(elem(e, dlogits.addr, l, k), m.f32.demote(m.f64.mul(e.f64(scale), m.f64.sub(exp(e, fn, m.f64.sub(at(e, logits.addr, l, k), max.get())), m.f64.convert_u.i32(m.i32.eq(k.get(), lab.get())))))),
          ]),
        );
      return s;
    });
  });
  c.phase((fn, tid) => {
    const i = fn.i32();
    const total = fn.f64();
    return onThread0(e, tid, [
      total.set(e.f64(0)),
      e.forc(i, 0, N, 1, [total.set(m.f64.add(total.get(), m.f64.load(0, 8, e.add(e.i32(terms), e.mulc(i.get(), 8)))))]),
      e.storef(e.i32(loss.addr), m.f32.demote(m.f64.div(total.get(), e.f64(N)))),
    ]);
  });
}
