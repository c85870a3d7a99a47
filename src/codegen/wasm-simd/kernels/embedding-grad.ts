import { numel } from '../../../ir/shape.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, onThread0, span, type KernelCtx } from '../kernel.ts';
import { rowOf } from './embedding.ts';

/**
 * dweight[v] = Σ g[i] over the positions i whose id is v. Each thread owns a range of rows: it
 * zeroes them, then walks every position in order and adds g's row into its own rows only. A
 * row's sum is thus always taken in position order by one thread (vector lanes are separate f32
 * sums), so dweight is the same bits for any thread count, and no two threads write one row.
 */
export function embeddingGrad(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const gs = c.inShape(0);
  const D = gs[gs.length - 1]!;
  const n = numel(gs) / D;
  const V = c.outShape(0)[0]!;
  const [g, ids, out] = [c.inAddr(0), c.inAddr(1), c.outAddr(0)];
  const D4 = D - (D % 4);
  c.phase((fn, tid) => {
    const [i, row, d, src, dst] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    const v = fn.v128();
    const add = (lanes: number) => [v.set(e.vadd(e.vloadN(dst.get(), lanes), e.vloadN(src.get(), lanes))), e.vstoreN(dst.get(), v.get(), lanes)];
    const rows = (lo: X, hi: X): X[] => [
      m.memory.fill(e.add(e.i32(out), e.mulc(e.copyExpr(lo), 4 * D)), e.i32(0), e.mulc(e.sub(e.copyExpr(hi), e.copyExpr(lo)), 4 * D)),
      e.forc(i, 0, n, 1, [
        ...rowOf(e, fn, ids, i.get(), V, row),
        e.if(m.i32.and(m.i32.ge_s(row.get(), e.copyExpr(lo)), m.i32.lt_s(row.get(), e.copyExpr(hi))), [
          src.set(e.add(e.i32(g), e.mulc(i.get(), 4 * D))),
          dst.set(e.add(e.i32(out), e.mulc(row.get(), 4 * D))),
          e.forc(d, 0, D4, 4, [...add(4), src.set(e.addc(src.get(), 16)), dst.set(e.addc(dst.get(), 16))]),
          ...(D % 4 ? add(D % 4) : []),
        ]),
      ]),
    ];
    if (e.T > 1 && V >= e.T && numel(gs) + V * D >= PARALLEL_MIN) {
      const s = span(e, fn, tid, V);
      return [...s.init, ...rows(s.lo.get(), s.hi.get())];
    }
    return onThread0(e, tid, rows(e.i32(0), e.i32(V)));
  });
}
