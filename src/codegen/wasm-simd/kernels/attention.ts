import { attentionDims, dropoutThreshold, headView, KERNEL_KINDS, type AttentionDims, type HeadView } from '../../../ir/kernels.ts';
import { roundUp, type Emitter, type Fn, type Local, type X } from '../emitter.ts';
import { ats, sharedLoop, type At, type KernelCtx } from '../kernel.ts';
import { vexp } from '../math.ts';
import { rngBits24, rngKey } from '../expr.ts';
import { Stream } from '../../../ir/rng.ts';
import { log } from './lines.ts';

/**
 * attention and attention_grad (src/ir/kernels.ts). One leading index (a batch element's head) is
 * one unit of work, taken whole by one thread: every sum runs in the same order whatever the
 * thread count, and dk and dv accumulate in place without atomics. Per unit, kᵀ (and for the
 * backward vᵀ) is copied into thread scratch as [D, S] rows padded to a multiple of 4, so a row of
 * scores is four columns per vector: s[j..j+3] = Σ_d q[i, d]·kᵀ[d, j..j+3]. Then one row of
 * scores at a time, in scratch: the [T, S] matrix is never stored.
 */

/** attentionDims and S rounded up to a multiple of 4, the row length of the transposed copies. */
type Geometry = AttentionDims & { S4: number };

function geometry(q: HeadView, k: HeadView, v: HeadView): Geometry {
  const d = attentionDims(q, k, v);
  return { ...d, S4: roundUp(d.S, 4) };
}

/** An operand's address and view: rows of D elements, `sT` apart (src/ir/kernels.ts: headView). */
interface Rows {
  addr: number;
  view: HeadView;
}

const rowsOf = (t: At, view?: readonly number[]): Rows => ({ addr: t.addr, view: headView(t.shape, view) });

const IOTA = new Uint8Array(new Int32Array([0, 1, 2, 3]).buffer);

/** dst[c·S4 + j] = src[j·stride + c] for j < S, c < C, zeros in the padding columns (S4 ≥ S: dst's row length). */
function transpose(e: Emitter, fn: Fn, src: Local, dst: Local, S: number, C: number, S4: number, stride = C): X[] {
  const j = fn.i32();
  const c = fn.i32();
  return [
    e.m.memory.fill(dst.get(), e.i32(0), e.i32(4 * C * S4)),
    e.forc(j, 0, S, 1, [
      e.forc(c, 0, C, 1, [
        e.storef(e.add(dst.get(), e.mulc(e.add(e.mulc(c.get(), S4), j.get()), 4)), e.loadf(e.add(src.get(), e.mulc(e.add(e.mulc(j.get(), stride), c.get()), 4)))),
      ]),
    ]),
  ];
}

/**
 * out_r[j] = Σ_c a_r[c]·bᵀ[c, j] for the nb vector blocks of one or two rows a_r of C floats
 * (q·kᵀ, dy·vᵀ), bᵀ a transposed copy with rows of S4. Eight accumulators at a time (four blocks
 * of one row, or four of each of two: each load of bᵀ then serves both rows), then single
 * blocks.
 */
function rowProducts(e: Emitter, fn: Fn, as: readonly Local[], bt: Local, nb: Local, C: number, S4: number, outs: readonly Local[]): X[] {
  const m = e.m;
  const jb = fn.i32();
  const xs = as.map(() => fn.v128());
  // One c a loop iteration, as the gemm tiles: unrolled over c, V8 schedules the loads of many
  // c ahead and spills the accumulators.
  const [c, pb, pa] = [fn.i32(), fn.i32(), fn.i32()];
  const group = (blocks: number): X[] => {
    const acc = as.map(() => Array.from({ length: blocks }, () => fn.v128()));
    const bv = fn.v128();
    const body: X[] = [];
    as.forEach((a, r) => body.push(xs[r]!.set(e.vsplatLoad(e.add(a.get(), pa.get())))));
    for (let k = 0; k < blocks; k++) {
      body.push(bv.set(e.vload(pb.get(), 16 * k)));
      acc.forEach((row, r) => body.push(row[k]!.set(e.madd(xs[r]!.get(), bv.get(), row[k]!.get()))));
    }
    body.push(pa.set(e.addc(pa.get(), 4)), pb.set(e.addc(pb.get(), 4 * S4)));
    return [
      ...acc.flat().map((v) => v.set(e.vzero())),
      pa.set(e.i32(0)),
      pb.set(e.add(bt.get(), e.mulc(jb.get(), 16))),
      e.forc(c, 0, C, 1, body),
      ...acc.flatMap((row, r) => row.map((v, k) => e.vstore(e.add(outs[r]!.get(), e.mulc(e.addc(jb.get(), k), 16)), v.get()))),
    ];
  };
  const top = e.label('blk');
  const done = e.label('blkd');
  return [
    jb.set(e.i32(0)),
    m.block(done, [m.loop(top, e.block([m.br(done, m.i32.gt_s(e.addc(jb.get(), 4), nb.get())), ...group(4), jb.set(e.addc(jb.get(), 4)), m.br(top)]))]),
    e.for(jb, jb.get(), nb.get(), 1, group(1)),
  ];
}

/**
 * out_r = Σ_{j < n} splat(w_r[j])·rows[j] for one or two rows of C floats (p·v, ds·k): eight
 * accumulators at a time (eight 4-float chunks of one row, or four of each of two, which then
 * share each load of rows[j]), the last chunk partial when C is not a multiple of 4.
 */
function weightedRows(e: Emitter, fn: Fn, ws: readonly Local[], n: Local, rows: Local, C: number, outs: readonly Local[]): X[] {
  const chunks = Math.ceil(C / 4);
  const per = 8 / ws.length;
  const j = fn.i32();
  const wj = ws.map(() => fn.v128());
  const rv = fn.v128();
  const lanes = (ch: number) => Math.min(4, C - 4 * ch);
  const s: X[] = [];
  for (let g = 0; g < chunks; g += per) {
    const group = Array.from({ length: Math.min(per, chunks - g) }, (_, i) => g + i);
    const acc = ws.map(() => group.map(() => fn.v128()));
    s.push(
      ...acc.flat().map((a) => a.set(e.vzero())),
      e.for(j, e.i32(0), n.get(), 1, [
        ...ws.map((w, r) => wj[r]!.set(e.vsplatLoad(e.add(w.get(), e.mulc(j.get(), 4))))),
        ...group.flatMap((ch, i) => [
          rv.set(e.vloadN(e.add(rows.get(), e.mulc(j.get(), 4 * C)), lanes(ch), 16 * ch)),
          ...acc.map((row, r) => row[i]!.set(e.madd(wj[r]!.get(), rv.get(), row[i]!.get()))),
        ]),
      ]),
      ...acc.flatMap((row, r) => group.map((ch, i) => e.vstoreN(outs[r]!.get(), row[i]!.get(), lanes(ch), 16 * ch))),
    );
  }
  return s;
}

/**
 * out[j, ·] = Σ_i w[i, j]·x[i, ·] for j < S (dk = dsᵀ·q, dv = pᵀ·dy), w the unit's [T, S4] rows of
 * weights, x T contiguous rows of C floats, out S contiguous rows: 4 keys × 8 columns in 8
 * registers, i in order, from i = j0 under a causal mask (the weights of keys past a row's limit
 * are zero, and so are the terms left out). Each element is the same sum, in the same order, as
 * accumulating a row of weights at a time.
 */
function transposedProducts(e: Emitter, fn: Fn, w: Local, x: Local, out: Local, g: Geometry, causal: boolean, C: number): X[] {
  const { T, S, S4 } = g;
  const [j0, i, pw, px] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const acc = Array.from({ length: 8 }, () => fn.v128());
  const bv = [fn.v128(), fn.v128()];
  const av = fn.v128();
  const tile = (mr: number, d0: number): X[] => {
    const lanes = [Math.min(4, C - d0), Math.max(0, Math.min(4, C - d0 - 4))].filter((l) => l > 0);
    const kBody: X[] = [];
    lanes.forEach((l, v) => kBody.push(bv[v]!.set(e.vloadN(px.get(), l, 4 * d0 + 16 * v))));
    for (let r = 0; r < mr; r++) {
      kBody.push(av.set(e.vsplatLoad(pw.get(), 4 * r)));
      lanes.forEach((_, v) => kBody.push(acc[2 * r + v]!.set(e.madd(av.get(), bv[v]!.get(), acc[2 * r + v]!.get()))));
    }
    kBody.push(pw.set(e.addc(pw.get(), 4 * S4)), px.set(e.addc(px.get(), 4 * C)));
    const from = causal ? j0.get() : e.i32(0);
    return [
      ...acc.slice(0, 2 * mr).map((a) => a.set(e.vzero())),
      pw.set(e.add(w.get(), e.mulc(e.add(e.mulc(from, S4), j0.get()), 4))),
      px.set(e.add(x.get(), e.mulc(e.copyExpr(from), 4 * C))),
      e.for(i, e.copyExpr(from), e.i32(T), 1, kBody),
      ...Array.from({ length: mr }, (_, r) => lanes.map((l, v) => e.vstoreN(e.add(out.get(), e.mulc(e.addc(j0.get(), r), 4 * C)), acc[2 * r + v]!.get(), l, 4 * d0 + 16 * v))).flat(),
    ];
  };
  const cols = (mr: number) => Array.from({ length: Math.ceil(C / 8) }, (_, b) => tile(mr, 8 * b)).flat();
  const full = S - (S % 4);
  return [e.forc(j0, 0, full, 4, cols(4)), ...(S % 4 ? [j0.set(e.i32(full)), ...cols(S % 4)] : [])];
}

/** Copies n rows of C floats from rows `from` apart to rows `to` apart: one copy when both are contiguous. */
function copyRows(e: Emitter, fn: Fn, src: Local, from: number, dst: Local, to: number, n: number, C: number): X[] {
  const m = e.m;
  if (from === C && to === C) return [m.memory.copy(dst.get(), src.get(), e.i32(4 * n * C))];
  const j = fn.i32();
  return [e.forc(j, 0, n, 1, [m.memory.copy(e.add(dst.get(), e.mulc(j.get(), 4 * to)), e.add(src.get(), e.mulc(j.get(), 4 * from)), e.i32(4 * C))])];
}

/** The state of one unit's loop over its rows: pointers to the unit's tensors and the row's limit. */
interface RowLoop {
  i: Local;
  /** Columns row i attends to: i + 1 (causal, at most S) or S. */
  lim: Local;
  /** Vector blocks covering them. */
  nb: Local;
  jb: Local;
  qi: Local;
}

/**
 * The rows two at a time, then the last alone when T is odd: body([r0, r1]) with both rows given
 * the second's block count (the first row's extra columns are past its limit, masked to zero).
 */
function rowPairs(e: Emitter, fn: Fn, g: Geometry, causal: boolean, q: Local, qStride: number, body: (rs: RowLoop[]) => X[]): X[] {
  const m = e.m;
  const row = (): RowLoop => ({ i: fn.i32(), lim: fn.i32(), nb: fn.i32(), jb: fn.i32(), qi: fn.i32() });
  const at = (r: RowLoop) => [
    r.lim.set(causal ? m.select(m.i32.lt_s(r.i.get(), e.i32(g.S)), e.addc(r.i.get(), 1), e.i32(g.S)) : e.i32(g.S)),
    r.nb.set(m.i32.shr_u(e.addc(r.lim.get(), 3), e.i32(2))),
    r.qi.set(e.add(q.get(), e.mulc(r.i.get(), 4 * qStride))),
  ];
  const [r0, r1] = [row(), row()];
  const even = g.T - (g.T % 2);
  const stmts: X[] = [];
  if (even > 0) stmts.push(e.forc(r0.i, 0, even, 2, [r1.i.set(e.addc(r0.i.get(), 1)), ...at(r0), ...at(r1), r0.nb.set(r1.nb.get()), ...body([r0, r1])]));
  if (g.T % 2) stmts.push(r0.i.set(e.i32(g.T - 1)), ...at(r0), ...body([r0]));
  return stmts;
}

/** x·scale, or x/scale when the model divides: each rounds as the graph's op does. */
const scaled = (e: Emitter, a: { scale: number; divide: boolean }, x: X): X => (a.divide ? e.vdiv(x, e.vconst(a.scale)) : e.vmul(x, e.vconst(a.scale)));

/** Block jb of a row of products q·kᵀ, scaled, -inf in the lanes at or past the row's limit. */
function masked(e: Emitter, r: RowLoop, a: { scale: number; divide: boolean }, raw: X): X {
  const m = e.m;
  const inRow = m.i32x4.lt_s(m.i32x4.add(m.i32x4.splat(e.mulc(r.jb.get(), 4)), m.v128.const(IOTA)), m.i32x4.splat(r.lim.get()));
  return m.v128.bitselect(scaled(e, a, raw), e.vconst(-Infinity), inRow);
}

/** Attention's dropout in a kernel: the rng key (set once per thread) and the kept-value factor. */
interface Dropout {
  key: Local;
  threshold: number;
  factor: number;
}

function dropoutOf(e: Emitter, fn: Fn, a: { dropout: boolean; p?: number; stream?: number }, step: At | undefined): { drop?: Dropout; init: X[] } {
  if (!a.dropout) return { init: [] };
  const key = fn.i32();
  return { drop: { key, threshold: dropoutThreshold(a.p!), factor: 1 / (1 - a.p!) }, init: [key.set(rngKey(e, fn, Stream.DROPOUT + a.stream!, e.loadf(e.i32(step!.addr))))] };
}

/** dropout(x) on block jb of row i of unit u: x·factor where the draw at (u·T + i)·S + j keeps it, else 0. */
function dropBlock(e: Emitter, fn: Fn, d: Dropout, g: Geometry, u: Local, r: RowLoop, x: X): X {
  const m = e.m;
  const index = m.i32x4.add(m.i32x4.splat(e.add(e.mulc(e.add(e.mulc(u.get(), g.T), r.i.get()), g.S), e.mulc(r.jb.get(), 4))), m.v128.const(IOTA));
  const keep = m.f32x4.ge(rngBits24(e, fn, d.key, index), e.vconst(d.threshold));
  return m.v128.and(e.vmul(x, e.vconst(d.factor)), keep);
}

/** Sets the unit's base pointers from its index u = b·H + h: row 0 of its [T, D] block of each operand. */
function bases(e: Emitter, u: Local, list: [Local, Rows][]): X[] {
  const m = e.m;
  return list.map(([p, { addr, view: v }]) => {
    const at = v.H === 1 ? e.mulc(u.get(), 4 * v.sB) : e.add(e.mulc(m.i32.div_u(u.get(), e.i32(v.H)), 4 * v.sB), e.mulc(m.i32.rem_u(u.get(), e.i32(v.H)), 4 * v.sH));
    return p.set(e.add(e.i32(addr + 4 * v.off), at));
  });
}

export function attention(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const { attrs: a, inputs, outputs } = KERNEL_KINDS.attention.read(ats(c));
  const [qr, kr, vr, yr] = [rowsOf(inputs.q, a.qView), rowsOf(inputs.k, a.kView), rowsOf(inputs.v, a.vView), rowsOf(outputs.y, a.yView)];
  const g = geometry(qr.view, kr.view, vr.view);
  const { S, D, E, S4 } = g;
  c.phase((fn, tid) => {
    const [u, q, k, v, y, lse, kt, vc] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    // Two rows of scores in scratch: rows go in pairs, sharing each load of kᵀ and of v.
    const rows = [fn.i32(), fn.i32()];
    // v's rows read through a view are copied together first: rows a view's stride apart (the
    // width of a qkv projection) fall into few cache sets and evict each other.
    const vStrided = vr.view.sT !== E;
    const [acc, mx, sum, tmp] = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const [max, total] = [fn.f32(), fn.f32()];
    const yis = [fn.i32(), fn.i32()];
    const { drop, init } = dropoutOf(e, fn, a, inputs.step);
    /** Row r's scores in `row` turned into p (softmax, then dropout), and its logsumexp stored. */
    const softmax = (r: RowLoop, row: Local): X[] => [
      mx.set(e.vconst(-Infinity)),
      e.for(r.jb, e.i32(0), r.nb.get(), 1, [
        acc.set(masked(e, r, a, e.vload(e.add(row.get(), e.mulc(r.jb.get(), 16))))),
        e.vstore(e.add(row.get(), e.mulc(r.jb.get(), 16)), acc.get()),
        // pmax: one instruction, where f32x4.max is several; a NaN it drops still makes the row NaN through exp.
        mx.set(m.f32x4.pmax(mx.get(), acc.get())),
      ]),
      max.set(e.hmax(mx.get(), tmp)),
      sum.set(e.vzero()),
      e.for(r.jb, e.i32(0), r.nb.get(), 1, [
        acc.set(vexp(e, fn, e.vsub(e.vload(e.add(row.get(), e.mulc(r.jb.get(), 16))), e.splat(max.get())))),
        e.vstore(e.add(row.get(), e.mulc(r.jb.get(), 16)), acc.get()),
        sum.set(e.vadd(sum.get(), acc.get())),
      ]),
      total.set(e.hsum(sum.get(), tmp)),
      e.for(r.jb, e.i32(0), r.nb.get(), 1, [
        acc.set(e.vdiv(e.vload(e.add(row.get(), e.mulc(r.jb.get(), 16))), e.splat(total.get()))),
        e.vstore(e.add(row.get(), e.mulc(r.jb.get(), 16)), drop ? dropBlock(e, fn, drop, g, u, r, acc.get()) : acc.get()),
      ]),
      ...(outputs.lse ? [e.storef(e.add(lse.get(), e.mulc(r.i.get(), 4)), m.f32.add(max.get(), m.f32.demote(log(e, fn, m.f64.promote(total.get())))))] : []),
    ];
    const body = rowPairs(e, fn, g, a.causal, q, qr.view.sT, (rs) => [
      ...rowProducts(e, fn, rs.map((r) => r.qi), kt, rs.at(-1)!.nb, D, S4, rows.slice(0, rs.length)),
      ...rs.flatMap((r, n) => softmax(r, rows[n]!)),
      ...rs.map((r, n) => yis[n]!.set(e.add(y.get(), e.mulc(r.i.get(), 4 * yr.view.sT)))),
      ...weightedRows(e, fn, rows.slice(0, rs.length), rs.at(-1)!.lim, vStrided ? vc : v, E, yis.slice(0, rs.length)),
    ]);
    return [
      kt.set(c.threadScratch(4 * (D * S4 + 2 * S4 + (vStrided ? S * E : 0)), tid)),
      rows[0]!.set(e.addc(kt.get(), 4 * D * S4)),
      rows[1]!.set(e.addc(rows[0]!.get(), 4 * S4)),
      vc.set(e.addc(rows[1]!.get(), 4 * S4)),
      ...init,
      ...sharedLoop(c, fn, u, g.L, [
        ...bases(e, u, [[q, qr], [k, kr], [v, vr], [y, yr], ...(outputs.lse ? [[lse, rowsOf({ ...outputs.lse, shape: [...outputs.lse.shape, 1] })] as [Local, Rows]] : [])]),
        ...transpose(e, fn, k, kt, S, D, S4, kr.view.sT),
        ...(vStrided ? copyRows(e, fn, v, vr.view.sT, vc, E, S, E) : []),
        ...body,
      ]),
    ];
  });
}

export function attentionGrad(c: KernelCtx): void {
  const { e } = c;
  const { attrs: a, inputs, outputs } = KERNEL_KINDS.attention_grad.read(ats(c));
  const [dyr, qr, kr, vr, yr] = [rowsOf(inputs.dy, a.dyView), rowsOf(inputs.q, a.qView), rowsOf(inputs.k, a.kView), rowsOf(inputs.v, a.vView), rowsOf(inputs.y, a.yView)];
  const g = geometry(qr.view, kr.view, vr.view);
  const { T, S, D, E, S4 } = g;
  // dq, dk and dv: their own outputs, or views of one (dqkv); dk transposed only in its own.
  const into = (t: At | undefined, view: readonly number[] | undefined) => rowsOf(outputs.dqkv ?? t!, outputs.dqkv ? view : undefined);
  const [dqr, dkr, dvr] = [into(outputs.dq, a.dqView), into(outputs.dk, a.dkView), into(outputs.dv, a.dvView)];
  c.phase((fn, tid) => {
    const [u, dy, q, k, v, y, lse, dq, dk, dv] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    const [kt, vt, kc, qc, dyc, dkAcc, dvAcc] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    // Rows go in pairs, as in the forward, their products and weights kept in the unit's [T, S4]
    // weights (p or its dropout, and ds) for dk and dv at the end; kept and ds point at the pair's.
    const [keptAll, dsAll] = [fn.i32(), fn.i32()];
    const [kept, ds] = [[fn.i32(), fn.i32()], [fn.i32(), fn.i32()]];
    // Rows read or accumulated through a view (a stride apart) go through contiguous copies in
    // scratch, as in the forward; a transposed dk accumulates as rows there too.
    const kStrided = kr.view.sT !== D;
    const qStrided = qr.view.sT !== D;
    const dyStrided = dyr.view.sT !== E;
    const dkLocal = a.dkTransposed || dkr.view.sT !== D;
    const dvLocal = dvr.view.sT !== E;
    const { drop, init } = dropoutOf(e, fn, a, inputs.step);
    const [acc, dp, dot, tmp] = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const [rowLse, total] = [fn.f32(), fn.f32()];
    const [dyis, dqis, yi] = [[fn.i32(), fn.i32()], [fn.i32(), fn.i32()], fn.i32()];
    const blk = (base: Local, jb: Local) => e.add(base.get(), e.mulc(jb.get(), 16));
    /**
     * Row r's products (q·kᵀ in ds, dy·vᵀ in kept) turned, block by block, into p recomputed from
     * the forward's logsumexp, and ds = p·(dp - Σ) and the scale, as softmax_grad and the scaling
     * op round them (each block read before it is overwritten); softmax_grad's Σ_j p·dp as Σ_e dy·y.
     */
    const weights = (r: RowLoop, n: number): X[] => [
      rowLse.set(e.loadf(e.add(lse.get(), e.mulc(r.i.get(), 4)))),
      yi.set(e.add(y.get(), e.mulc(r.i.get(), 4 * yr.view.sT))),
      dot.set(e.vzero()),
      ...Array.from({ length: Math.ceil(E / 4) }, (_, ch) => dot.set(e.vadd(dot.get(), e.vmul(e.vloadN(dyis[n]!.get(), Math.min(4, E - 4 * ch), 16 * ch), e.vloadN(yi.get(), Math.min(4, E - 4 * ch), 16 * ch))))),
      total.set(e.hsum(dot.get(), tmp)),
      e.for(r.jb, e.i32(0), r.nb.get(), 1, [
        acc.set(vexp(e, fn, e.vsub(masked(e, r, a, e.vload(blk(ds[n]!, r.jb))), e.splat(rowLse.get())))),
        dp.set(e.vload(blk(kept[n]!, r.jb))),
        // Under dropout, dv takes the kept weights p' and dp the mask's gradient; ds takes p.
        ...(drop ? [e.vstore(blk(kept[n]!, r.jb), dropBlock(e, fn, drop, g, u, r, acc.get())), dp.set(dropBlock(e, fn, drop, g, u, r, dp.get()))] : [e.vstore(blk(kept[n]!, r.jb), acc.get())]),
        e.vstore(blk(ds[n]!, r.jb), scaled(e, a, e.vmul(acc.get(), e.vsub(dp.get(), e.splat(total.get()))))),
      ]),
    ];
    const body = rowPairs(e, fn, g, a.causal, q, qr.view.sT, (rs) => {
      const n = rs.length;
      const last = rs.at(-1)!;
      return [
        ...rs.map((r, i) => dyis[i]!.set(e.add(dy.get(), e.mulc(r.i.get(), 4 * dyr.view.sT)))),
        ...rs.flatMap((r, i) => [kept[i]!.set(e.add(keptAll.get(), e.mulc(r.i.get(), 4 * S4))), ds[i]!.set(e.add(dsAll.get(), e.mulc(r.i.get(), 4 * S4)))]),
        ...rowProducts(e, fn, rs.map((r) => r.qi), kt, last.nb, D, S4, ds.slice(0, n)),
        ...rowProducts(e, fn, dyis.slice(0, n), vt, last.nb, E, S4, kept.slice(0, n)),
        ...rs.flatMap((r, i) => weights(r, i)),
        ...rs.map((r, i) => dqis[i]!.set(e.add(dq.get(), e.mulc(r.i.get(), 4 * dqr.view.sT)))),
        ...weightedRows(e, fn, ds.slice(0, n), last.lim, kStrided ? kc : k, D, dqis.slice(0, n)),
      ];
    });
    return [
      kt.set(c.threadScratch(4 * ((D + E) * S4 + 2 * T * S4 + (kStrided ? S * D : 0) + (qStrided ? T * D : 0) + (dyStrided ? T * E : 0) + (dkLocal ? S * D : 0) + (dvLocal ? S * E : 0)), tid)),
      vt.set(e.addc(kt.get(), 4 * D * S4)),
      keptAll.set(e.addc(vt.get(), 4 * E * S4)),
      dsAll.set(e.addc(keptAll.get(), 4 * T * S4)),
      kc.set(e.addc(dsAll.get(), 4 * T * S4)),
      qc.set(e.addc(kc.get(), kStrided ? 4 * S * D : 0)),
      dyc.set(e.addc(qc.get(), qStrided ? 4 * T * D : 0)),
      dkAcc.set(e.addc(dyc.get(), dyStrided ? 4 * T * E : 0)),
      dvAcc.set(e.addc(dkAcc.get(), dkLocal ? 4 * S * D : 0)),
      ...init,
      ...sharedLoop(c, fn, u, g.L, [
        ...bases(e, u, [
          [dy, dyr], [q, qr], [k, kr], [v, vr], [y, yr], [lse, rowsOf({ ...inputs.lse, shape: [...inputs.lse.shape, 1] })],
          [dq, dqr], [dk, dkr], [dv, dvr],
        ]),
        ...(kStrided ? copyRows(e, fn, k, kr.view.sT, kc, D, S, D) : []),
        ...(qStrided ? copyRows(e, fn, q, qr.view.sT, qc, D, T, D) : []),
        ...(dyStrided ? copyRows(e, fn, dy, dyr.view.sT, dyc, E, T, E) : []),
        ...transpose(e, fn, k, kt, S, D, S4, kr.view.sT),
        ...transpose(e, fn, v, vt, S, E, S4, vr.view.sT),
        ...body,
        ...transposedProducts(e, fn, dsAll, qStrided ? qc : q, dkLocal ? dkAcc : dk, g, a.causal, D),
        ...transposedProducts(e, fn, keptAll, dyStrided ? dyc : dy, dvLocal ? dvAcc : dv, g, a.causal, E),
        ...(a.dkTransposed ? transpose(e, fn, dkAcc, dk, S, D, S) : dkLocal ? copyRows(e, fn, dkAcc, D, dk, dkr.view.sT, S, D) : []),
        ...(dvLocal ? copyRows(e, fn, dvAcc, E, dv, dvr.view.sT, S, E) : []),
      ]),
    ];
  });
}
