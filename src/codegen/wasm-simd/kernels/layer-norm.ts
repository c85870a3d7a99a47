import { num } from '../../../ir/op.ts';
import { layerNormRows } from '../../../ir/ops/layer-norm.ts';
import type { Fn, Local, X } from '../emitter.ts';
import { PARALLEL_MIN, onThread0, span, type KernelCtx } from '../kernel.ts';

// Layer norm a row at a time: a row (D contiguous f32, a few hundred at most in a transformer) stays
// in L1 across the passes over it, so its statistics are recomputed where they are needed rather
// than stored. Sums run in four f32 lanes, a tail of D mod 4 masked off, then across the lanes.

interface Row {
  /** Byte offset of the row from each tensor's start. */
  base: Local;
  D: number;
}

/** body(row) for this thread's share of the rows (all of them on thread 0 when too few to split). */
function eachRow(c: KernelCtx, fn: Fn, tid: Local, rows: number, D: number, body: (r: Row) => X[]): X[] {
  const { e } = c;
  const i = fn.i32();
  const base = fn.i32();
  const perRow = [base.set(e.mulc(i.get(), 4 * D)), ...body({ base, D })];
  if (e.T > 1 && rows >= e.T && rows * D >= PARALLEL_MIN) {
    const s = span(e, fn, tid, rows);
    return [...s.init, e.for(i, s.lo.get(), s.hi.get(), 1, perRow)];
  }
  return onThread0(e, tid, [e.forc(i, 0, rows, 1, perRow)]);
}

/** Lanes 0..n-1 all ones, the others zero: masks the tail of a row. */
function laneMask(n: number): Uint8Array {
  return new Uint8Array(new Int32Array([0, 1, 2, 3].map((l) => (l < n ? -1 : 0))).buffer);
}

/**
 * Reads an operand's four elements at the current column (n of them valid): of the row, or with
 * `perRow` false of a [row]-shaped tensor (layer norm's weight).
 */
type Load = (addr: number, perRow?: boolean) => X;

/** Σ over the row of term(load); the tail's invalid lanes are masked out of the sum. */
function rowSum(c: KernelCtx, fn: Fn, r: Row, term: (load: Load) => X): X[] & { value: X } {
  const { e } = c;
  const m = e.m;
  const acc = fn.v128();
  const tmp = fn.v128();
  const k = fn.i32();
  const D4 = r.D - (r.D % 4);
  const at = (col: () => X, n: number): Load => (addr, perRow = true) => e.vloadN(e.add(perRow ? e.add(e.i32(addr), r.base.get()) : e.i32(addr), col()), n);
  const stmts: X[] = [acc.set(e.vzero())];
  if (D4 > 0) stmts.push(e.forc(k, 0, 4 * D4, 16, [acc.set(e.vadd(acc.get(), term(at(() => k.get(), 4))))]));
  if (r.D % 4) stmts.push(acc.set(e.vadd(acc.get(), m.v128.and(term(at(() => e.i32(4 * D4), r.D % 4)), m.v128.const(laneMask(r.D % 4))))));
  return Object.assign(stmts, { value: e.hsum(acc.get(), tmp) });
}

/** out[col] = f(load) over the row, stored n lanes at a time. */
function rowMap(c: KernelCtx, fn: Fn, r: Row, out: number, f: (load: Load) => X): X[] {
  const { e } = c;
  const k = fn.i32();
  const v = fn.v128();
  const D4 = r.D - (r.D % 4);
  const ptr = (addr: number, col: X, perRow = true) => e.add(perRow ? e.add(e.i32(addr), r.base.get()) : e.i32(addr), col);
  const step = (col: () => X, n: number) => [v.set(f((a, perRow) => e.vloadN(ptr(a, col(), perRow), n))), e.vstoreN(ptr(out, col()), v.get(), n)];
  const stmts: X[] = [];
  if (D4 > 0) stmts.push(e.forc(k, 0, 4 * D4, 16, step(() => k.get(), 4)));
  if (r.D % 4) stmts.push(...step(() => e.i32(4 * D4), r.D % 4));
  return stmts;
}

/** Statements setting `mean` and `rstd` (splatted f32x4) to the row's mean and 1/sqrt(var + eps). */
function rowStats(c: KernelCtx, fn: Fn, r: Row, x: number, eps: number, mean: Local, rstd: Local): X[] {
  const { e } = c;
  const m = e.m;
  const s = rowSum(c, fn, r, (ld) => ld(x));
  const stmts = [...s, mean.set(e.splat(m.f32.div(s.value, e.f32(r.D))))];
  const v = rowSum(c, fn, r, (ld) => {
    const d = e.vsub(ld(x), mean.get());
    return e.vmul(d, e.copyExpr(d));
  });
  const variance = m.f32.div(v.value, e.f32(r.D));
  return [...stmts, ...v, rstd.set(e.splat(m.f32.div(e.f32(1), m.f32.sqrt(m.f32.add(variance, e.f32(eps))))))];
}

function rowsOf(c: KernelCtx): { rows: number; D: number; eps: number } {
  const [rows, D] = layerNormRows(c.inShape(0), c.k.attrs);
  return { rows, D, eps: num(c.k.attrs, 'eps') };
}

/** layer_norm (src/ir/ops/layer-norm.ts): x̂ = (x - mean)·r per row. */
export function layerNorm(c: KernelCtx): void {
  const { e } = c;
  const { rows, D, eps } = rowsOf(c);
  const x = c.inAddr(0);
  c.phase((fn, tid) => {
    const [mean, rstd] = [fn.v128(), fn.v128()];
    return eachRow(c, fn, tid, rows, D, (r) => [
      ...rowStats(c, fn, r, x, eps, mean, rstd),
      ...rowMap(c, fn, r, c.outAddr(0), (ld) => e.vmul(e.vsub(ld(x), mean.get()), rstd.get())),
    ]);
  });
}

/** layer_norm_grad: dx = r·(g - mean(g) - x̂·mean(g·x̂)) per row, x̂ = (x - mean)·r recomputed. */
export function layerNormGrad(c: KernelCtx): void {
  layerNormGradOf(c, undefined);
}

/** layer_norm_grad of g, or with `w` (the weight's address) of g·w, g·w rounded as the mul op rounds it. */
export function layerNormGradOf(c: KernelCtx, w: number | undefined): void {
  const { e } = c;
  const m = e.m;
  const { rows, D, eps } = rowsOf(c);
  const [g, x] = [c.inAddr(0), c.inAddr(1)];
  c.phase((fn, tid) => {
    const [mean, rstd, gm, gxm] = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const xhat = (ld: Load) => e.vmul(e.vsub(ld(x), mean.get()), rstd.get());
    const gOf = (ld: Load) => (w === undefined ? ld(g) : e.vmul(ld(g), ld(w, false)));
    return eachRow(c, fn, tid, rows, D, (r) => {
      const sg = rowSum(c, fn, r, gOf);
      const sgx = rowSum(c, fn, r, (ld) => e.vmul(gOf(ld), xhat(ld)));
      return [
        ...rowStats(c, fn, r, x, eps, mean, rstd),
        ...sg,
        gm.set(e.splat(m.f32.div(sg.value, e.f32(D)))),
        ...sgx,
        gxm.set(e.splat(m.f32.div(sgx.value, e.f32(D)))),
        ...rowMap(c, fn, r, c.outAddr(0), (ld) => e.vmul(rstd.get(), e.vsub(e.vsub(gOf(ld), gm.get()), e.vmul(xhat(ld), gxm.get())))),
      ];
    });
  });
}
