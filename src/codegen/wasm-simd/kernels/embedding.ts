import { numel } from '../../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from '../emitter.ts';
import { PARALLEL_MIN, onThread0, span, type KernelCtx } from '../kernel.ts';

/**
 * Sets `row` to the id at position `i` of `ids` when it is an integer in [0, V), else to -1
 * (src/ir/ops/embedding.ts): truncation gives the id back only for an integer (NaN truncates to
 * 0, which is not NaN), and one unsigned comparison rejects the negative and the too large.
 */
export function rowOf(e: Emitter, fn: Fn, ids: number, i: X, V: number, row: Local): X[] {
  const m = e.m;
  const x = fn.f32();
  const valid = m.i32.and(m.f32.eq(m.f32.convert_s.i32(row.get()), x.get()), m.i32.lt_u(row.get(), e.i32(V)));
  return [x.set(e.loadf(e.add(e.i32(ids), e.mulc(i, 4)))), row.set(m.i32.trunc_s_sat.f32(x.get())), row.set(m.select(valid, row.get(), e.i32(-1)))];
}

/** out[i] = weight[ids[i]] (a zero row for an invalid id): one row copy per position, positions split across threads. */
export function embedding(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const [V, D] = c.inShape(1) as [number, number];
  const n = numel(c.inShape(0));
  const [ids, w, out] = [c.inAddr(0), c.inAddr(1), c.outAddr(0)];
  c.phase((fn, tid) => {
    const i = fn.i32();
    const row = fn.i32();
    const dst = () => e.add(e.i32(out), e.mulc(i.get(), 4 * D));
    const body = [
      ...rowOf(e, fn, ids, i.get(), V, row),
      e.if(m.i32.ge_s(row.get(), e.i32(0)), [m.memory.copy(dst(), e.add(e.i32(w), e.mulc(row.get(), 4 * D)), e.i32(4 * D))], [m.memory.fill(dst(), e.i32(0), e.i32(4 * D))]),
    ];
    if (e.T > 1 && n * D >= PARALLEL_MIN && n >= e.T) {
      const s = span(e, fn, tid, n);
      return [...s.init, e.for(i, s.lo.get(), s.hi.get(), 1, body)];
    }
    return onThread0(e, tid, [e.forc(i, 0, n, 1, body)]);
  });
}
