import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import type { X } from '../emitter.ts';
import { ats, onThread0, type At, type KernelCtx } from '../kernel.ts';
import { labelOf } from './cross-entropy.ts';
import { vexp } from '../math.ts';
import { at, eachLine, log } from './lines.ts';

/** CrossEntropyLoss (mean) and, in the same pass over each row, its gradient. */
export function softmaxCrossEntropy(c: KernelCtx): void {
  const { attrs, inputs: { logits, labels }, outputs: { loss, dlogits } } = KERNEL_KINDS.softmax_cross_entropy.read(ats(c));
  crossEntropyInto(c, logits, labels, loss, dlogits, attrs.gradScale);
}

/**
 * Rows split across threads, four classes per vector: the row's max, then e = exp(x - max) with
 * their sum in f32 lanes (e kept in dlogits when it is asked for), the loss term
 * max + log Σe - x[label] in f64 into scratch, then dlogits = gradScale·(e/Σe - onehot)/N over the
 * kept e. Thread 0 sums the terms in f64 in row order, so the loss does not depend on the threads.
 */
export function crossEntropyInto(c: KernelCtx, logits: At, labels: At, loss: At, dlogits: At | undefined, gradScale: number): void {
  const { e } = c;
  const m = e.m;
  const [N, K] = logits.shape as [number, number];
  const scale = dlogits ? gradScale / N : 0;
  const terms = c.sharedScratch(8 * N);
  const K4 = K - (K % 4);
  const tailMask = m.v128.const(new Uint8Array(new Int32Array([0, 1, 2, 3].map((l) => (l < K % 4 ? -1 : 0))).buffer));
  c.phase((fn, tid) => {
    const [mx, sum, ev, tmp] = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const [max, total] = [fn.f32(), fn.f32()];
    const [lab, k, row, px, pd] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    /** body(n) for each vector of the row at byte column k (n valid lanes, the tail's others masked by the caller). */
    const sweep = (body: (n: number, col: () => X) => X[]): X[] => [
      ...(K4 > 0 ? [e.forc(k, 0, 4 * K4, 16, body(4, () => k.get()))] : []),
      ...(K % 4 ? body(K % 4, () => e.i32(4 * K4)) : []),
    ];
    const xv = (n: number, col: () => X) => e.vloadN(e.add(px.get(), col()), n);
    const onehot = (col: () => X) =>
      m.v128.and(m.i32x4.eq(m.i32x4.add(m.i32x4.splat(m.i32.shr_u(col(), e.i32(2))), m.v128.const(IOTA)), m.i32x4.splat(lab.get())), e.vconst(1));
    return eachLine(c, fn, tid, [N, K], 1, (l) => [
      row.set(m.i32.div_u(l.base.get(), e.i32(4 * K))),
      px.set(e.add(e.i32(logits.addr), l.base.get())),
      ...(dlogits ? [pd.set(e.add(e.i32(dlogits.addr), l.base.get()))] : []),
      mx.set(e.vconst(-Infinity)),
      ...sweep((n, col) => [mx.set(m.f32x4.pmax(mx.get(), n === 4 ? xv(n, col) : m.v128.bitselect(xv(n, col), e.vconst(-Infinity), tailMask)))]),
      max.set(e.hmax(mx.get(), tmp)),
      sum.set(e.vzero()),
      ...sweep((n, col) => [
        ev.set(vexp(e, fn, e.vsub(xv(n, col), e.splat(max.get())))),
        ...(n === 4 ? [] : [ev.set(m.v128.and(ev.get(), tailMask))]),
        sum.set(e.vadd(sum.get(), ev.get())),
        ...(dlogits ? [e.vstoreN(e.add(pd.get(), col()), ev.get(), n)] : []),
      ]),
      total.set(e.hsum(sum.get(), tmp)),
      lab.set(labelOf(e, labels.addr, row.get(), K)),
      m.f64.store(0, 8, e.add(e.i32(terms), e.mulc(row.get(), 8)), m.f64.sub(m.f64.add(m.f64.promote(max.get()), log(e, fn, m.f64.promote(total.get()))), at(e, logits.addr, l, lab))),
      ...(dlogits
        ? [
            ev.set(e.splat(m.f32.div(e.f32(scale), total.get()))),
            ...sweep((n, col) => {
              const ptr = () => e.add(pd.get(), col());
              return [tmp.set(e.vsub(e.vmul(e.vloadN(ptr(), n), ev.get()), e.vmul(onehot(col), e.vconst(scale)))), e.vstoreN(ptr(), tmp.get(), n)];
            }),
          ]
        : []),
    ]);
  });
  c.phase((fn, tid) => {
    const i = fn.i32();
    const sumAll = fn.f64();
    return onThread0(e, tid, [
      sumAll.set(e.f64(0)),
      e.forc(i, 0, N, 1, [sumAll.set(m.f64.add(sumAll.get(), m.f64.load(0, 8, e.add(e.i32(terms), e.mulc(i.get(), 8)))))]),
      e.storef(e.i32(loss.addr), m.f32.demote(m.f64.div(sumAll.get(), e.f64(N)))),
    ]);
  });
}

const IOTA = new Uint8Array(new Int32Array([0, 1, 2, 3]).buffer);
