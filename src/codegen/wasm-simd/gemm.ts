import { numel, type Shape } from '../../ir/shape.ts';
import type { Emitter, Fn, Local, X } from './emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, type KernelCtx } from './kernel.ts';

/**
 * C[M, N] = Σ_k A(m, k)·B(k, n) (+ bias[n]), C row-major; A(m, k) is at a + 4(m·aM + k·aK) and
 * B(k, n) at b + 4(k·bK + n·bN). Every transpose of matmul and the linear layer is one of three
 * register-tiled forms, chosen by which operand is contiguous along which index:
 *
 * - rows (bN = 1: B's rows contiguous along n): a 4×8 tile of C in 8 vector registers; each k
 *   loads 2 vectors of B's row and splats 4 values of A: 8 multiply-adds for 6 loads. matmul's
 *   gradients in the linear layer (K = batch or classes) are this form.
 * - dots (aK = bK = 1: both contiguous along k): a 2×4 tile of dot products, 4 lanes of k at a
 *   time, 8 accumulators summed across lanes at the end: 8 multiply-adds for 6 loads. The linear
 *   forward (x·wᵀ, k = features) is this form.
 * - columns (aM = 1, bK = 1: Aᵀ·Bᵀ): 4 rows of C at once from A's contiguous columns; the four
 *   results go to four rows, lane by lane. Rare; simple.
 *
 * Tails: tiles shrink at the edges of M and N (down to one row / one partial vector whose loads
 * read only the valid lanes); along k the dot form zero-fills the last partial vector.
 */
export interface Gemm {
  M: number;
  N: number;
  K: number;
  /** Base addresses: constants, or locals holding one batch element's (emitBatchedGemm). */
  a: number | Local;
  aM: number;
  aK: number;
  b: number | Local;
  bK: number;
  bN: number;
  c: number | Local;
  bias?: number;
}

const base = (e: Emitter, v: number | Local): X => (typeof v === 'number' ? e.i32(v) : v.get());

export function emitGemm(ctx: KernelCtx, g: Gemm): void {
  ctx.phase((fn, tid) => {
    const work = g.M * g.N * g.K;
    const parallel = ctx.T > 1 && work >= 4 * PARALLEL_MIN;
    const body = gemmBody(ctx, fn, g, parallel);
    return parallel ? body : onThread0(ctx.e, tid, body);
  });
}

function gemmBody(ctx: KernelCtx, fn: Fn, g: Gemm, parallel: boolean): X[] {
  if (g.bN === 1) return rowsForm(ctx, fn, g, parallel);
  if (g.aK === 1 && g.bK === 1) return dotsForm(ctx, fn, g, parallel);
  if (g.aM === 1 && g.bK === 1) return columnsForm(ctx, fn, g, parallel);
  return scalarForm(ctx, fn, g);
}

/** The batch of a batched product: its shape, and each operand's element stride along each batch axis (0 where broadcast). */
export interface GemmBatch {
  shape: Shape;
  a: readonly number[];
  b: readonly number[];
}

/**
 * One product per element of `batch` (torch.matmul's batch axes), `g`'s bases being batch
 * element 0's; C is contiguous over the batch. Batch elements are shared out between threads as
 * they come (sharedLoop), each computed by one thread with the single-product code above: the
 * products of attention heads are small, and many.
 */
export function emitBatchedGemm(ctx: KernelCtx, g: Gemm & { a: number; b: number; c: number }, batch: GemmBatch): void {
  const { e } = ctx;
  const m = e.m;
  const count = numel(batch.shape);
  ctx.phase((fn, tid) => {
    const [a, b, c, t] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    const parallel = ctx.T > 1 && count > 1 && g.M * g.N * g.K * count >= 4 * PARALLEL_MIN;
    // Offset of batch element t in an operand: its coordinates times the operand's strides.
    const offset = (st: readonly number[]): X => {
      let off: X = e.i32(0);
      let inner = 1;
      for (let d = batch.shape.length - 1; d >= 0; d--) {
        const n = batch.shape[d]!;
        if (st[d] !== 0 && n > 1) {
          const q = inner === 1 ? t.get() : m.i32.div_u(t.get(), e.i32(inner));
          off = e.add(off, e.mulc(d === 0 ? q : m.i32.rem_u(q, e.i32(n)), 4 * st[d]!));
        }
        inner *= n;
      }
      return off;
    };
    const body = [
      a.set(e.add(e.i32(g.a), offset(batch.a))),
      b.set(e.add(e.i32(g.b), offset(batch.b))),
      c.set(e.add(e.i32(g.c), e.mulc(t.get(), 4 * g.M * g.N))),
      ...gemmBody(ctx, fn, { ...g, a, b, c }, false),
    ];
    if (!parallel) return onThread0(e, tid, [e.forc(t, 0, count, 1, body)]);
    return sharedLoop(ctx, fn, t, count, body);
  });
}

/**
 * The rows and columns a thread computes: everything on one thread; else chunks of rows (when
 * there are enough 4-row tiles for every thread several times over) or of 8-column blocks, taken
 * from a shared counter (sharedLoop) so a thread that loses its core does not hold the others up.
 */
function split(ctx: KernelCtx, fn: Fn, g: Gemm, parallel: boolean, mr: number, nb: number) {
  const { e } = ctx;
  const m = e.m;
  const mlo = fn.i32();
  const mhi = fn.i32();
  const nlo = fn.i32();
  const nhi = fn.i32();
  if (!parallel) return { mlo, mhi, nlo, nhi, wrap: (body: X[]) => [mlo.set(e.i32(0)), mhi.set(e.i32(g.M)), nlo.set(e.i32(0)), nhi.set(e.i32(g.N)), ...body] };
  const byRows = g.M >= 2 * mr * ctx.T || g.N < nb * ctx.T;
  const [total, unit] = byRows ? [g.M, mr] : [g.N, nb];
  const units = Math.ceil(total / unit);
  const size = Math.ceil(units / (8 * ctx.T));
  const chunks = Math.ceil(units / size);
  const [lo, hi, fullLo, fullHi, full] = byRows ? [mlo, mhi, nlo, nhi, g.N] : [nlo, nhi, mlo, mhi, g.M];
  const chunk = fn.i32();
  return {
    mlo,
    mhi,
    nlo,
    nhi,
    wrap: (body: X[]) => [
      fullLo.set(e.i32(0)),
      fullHi.set(e.i32(full)),
      ...sharedLoop(ctx, fn, chunk, chunks, [
        lo.set(e.mulc(chunk.get(), size * unit)),
        hi.set(m.select(m.i32.lt_s(e.addc(lo.get(), size * unit), e.i32(total)), e.addc(lo.get(), size * unit), e.i32(total))),
        ...body,
      ]),
    ],
  };
}

/** Vectors of a column block: [4, 4] for 8 columns, [4, 3] for 7, ... */
function lanesOf(cols: number): number[] {
  const v: number[] = [];
  for (let c = cols; c > 0; c -= 4) v.push(Math.min(4, c));
  return v;
}

/** The longest k a rows-form tile sweeps at once (see KC in rowsForm). */
const KC_MAX = 128;

function rowsForm(ctx: KernelCtx, fn: Fn, g: Gemm, parallel: boolean): X[] {
  const { e } = ctx;
  const m = e.m;
  const MR = 4;
  const NB = 8;
  const { mlo, mhi, nlo, nhi, wrap } = split(ctx, fn, g, parallel, MR, NB);
  const row = fn.i32();
  const col = fn.i32();
  const k = fn.i32();
  const pa = fn.i32();
  const pb = fn.i32();
  const pc = fn.i32();
  const acc = Array.from({ length: MR * 2 }, () => fn.v128());
  const bv = [fn.v128(), fn.v128()];
  const av = fn.v128();
  // A long k (a weight gradient's batch) runs in blocks of KC: every tile of a block then reads
  // the same KC rows of A and B, which stay in cache, where a whole-k sweep per tile streams both
  // operands from memory once per tile. Blocks after the first add to C.
  const KC = g.K > KC_MAX ? Math.ceil(g.K / Math.ceil(g.K / KC_MAX)) : g.K;
  const blocked = KC < g.K;
  const kb = fn.i32();
  const kEnd = fn.i32();

  // One mr × (lanes) tile at (row, col).
  const tile = (mr: number, lanes: number[]): X[] => {
    const nv = lanes.length;
    const kBody: X[] = [];
    lanes.forEach((l, j) => kBody.push(bv[j]!.set(e.vloadN(pb.get(), l, 16 * j))));
    for (let r = 0; r < mr; r++) {
      kBody.push(av.set(e.vsplatLoad(pa.get(), 4 * r * g.aM)));
      for (let j = 0; j < nv; j++) kBody.push(acc[r * 2 + j]!.set(e.madd(av.get(), bv[j]!.get(), acc[r * 2 + j]!.get())));
    }
    kBody.push(pa.set(e.addc(pa.get(), 4 * g.aK)), pb.set(e.addc(pb.get(), 4 * g.bK)));
    const out: X[] = [
      pa.set(e.add(base(e, g.a), e.mulc(row.get(), 4 * g.aM))),
      pb.set(e.add(base(e, g.b), e.mulc(col.get(), 4))),
      pc.set(e.add(base(e, g.c), e.add(e.mulc(row.get(), 4 * g.N), e.mulc(col.get(), 4)))),
    ];
    if (blocked) out.push(pa.set(e.add(pa.get(), e.mulc(kb.get(), 4 * g.aK))), pb.set(e.add(pb.get(), e.mulc(kb.get(), 4 * g.bK))));
    for (let r = 0; r < mr; r++)
      for (let j = 0; j < nv; j++) {
        const first = g.bias === undefined ? e.vzero() : e.vloadN(e.add(e.i32(g.bias + 16 * j), e.mulc(col.get(), 4)), lanes[j]!);
        const init = blocked ? m.select(m.i32.eqz(kb.get()), first, e.vloadN(pc.get(), lanes[j]!, 4 * (r * g.N + 4 * j))) : first;
        out.push(acc[r * 2 + j]!.set(init));
      }
    out.push(blocked ? e.for(k, kb.get(), kEnd.get(), 1, kBody) : e.forc(k, 0, g.K, 1, kBody));
    for (let r = 0; r < mr; r++) for (let j = 0; j < nv; j++) out.push(e.vstoreN(pc.get(), acc[r * 2 + j]!.get(), lanes[j]!, 4 * (r * g.N + 4 * j)));
    return out;
  };

  const NF = g.N - (g.N % NB);
  const colsFor = (mr: number): X[] => {
    const nEnd = fn.i32();
    const stmts: X[] = [nEnd.set(m.select(m.i32.lt_s(nhi.get(), e.i32(NF)), nhi.get(), e.i32(NF))), e.for(col, nlo.get(), nEnd.get(), NB, tile(mr, [4, 4]))];
    if (g.N % NB) stmts.push(e.if(m.i32.eq(nhi.get(), e.i32(g.N)), [col.set(e.i32(NF)), ...tile(mr, lanesOf(g.N % NB))]));
    return stmts;
  };
  // Full 4-row tiles while they fit, then single rows.
  const rEnd = fn.i32();
  const rows = [
    rEnd.set(e.sub(mhi.get(), e.i32(MR - 1))),
    // e.for leaves `row` at the first row it did not run: the single rows start there.
    e.for(row, mlo.get(), rEnd.get(), MR, colsFor(MR)),
    e.for(row, row.get(), mhi.get(), 1, colsFor(1)),
  ];
  if (!blocked) return wrap(rows);
  return wrap([e.forc(kb, 0, g.K, KC, [kEnd.set(m.select(m.i32.lt_s(e.addc(kb.get(), KC), e.i32(g.K)), e.addc(kb.get(), KC), e.i32(g.K))), ...rows])]);
}

function dotsForm(ctx: KernelCtx, fn: Fn, g: Gemm, parallel: boolean): X[] {
  const { e } = ctx;
  const m = e.m;
  const MR = 2;
  const NR = 4;
  const { mlo, mhi, nlo, nhi, wrap } = split(ctx, fn, g, parallel, MR, NR);
  const row = fn.i32();
  const col = fn.i32();
  const k = fn.i32();
  const pa = fn.i32();
  const pb = fn.i32();
  const acc = Array.from({ length: MR * NR }, () => fn.v128());
  const av = [fn.v128(), fn.v128()];
  const bv = fn.v128();
  const t = fn.v128();
  const K4 = g.K - (g.K % 4);

  const tile = (mr: number, nr: number): X[] => {
    const step = (lanes: number): X[] => {
      const s: X[] = [];
      for (let r = 0; r < mr; r++) s.push(av[r]!.set(e.vloadN(pa.get(), lanes, 4 * r * g.aM)));
      for (let j = 0; j < nr; j++) {
        s.push(bv.set(e.vloadN(pb.get(), lanes, 4 * j * g.bN)));
        for (let r = 0; r < mr; r++) s.push(acc[r * NR + j]!.set(e.madd(av[r]!.get(), bv.get(), acc[r * NR + j]!.get())));
      }
      return s;
    };
    const out: X[] = [pa.set(e.add(base(e, g.a), e.mulc(row.get(), 4 * g.aM))), pb.set(e.add(base(e, g.b), e.mulc(col.get(), 4 * g.bN)))];
    for (let i = 0; i < mr * NR; i++) out.push(acc[i]!.set(e.vzero()));
    out.push(e.forc(k, 0, K4, 4, [...step(4), pa.set(e.addc(pa.get(), 16)), pb.set(e.addc(pb.get(), 16))]));
    if (g.K % 4) out.push(...step(g.K % 4));
    for (let r = 0; r < mr; r++)
      for (let j = 0; j < nr; j++) {
        let v = e.hsum(acc[r * NR + j]!.get(), t);
        if (g.bias !== undefined) v = m.f32.add(v, e.loadf(e.add(e.i32(g.bias), e.mulc(col.get(), 4)), 4 * j));
        out.push(e.storef(e.add(base(e, g.c), e.add(e.mulc(row.get(), 4 * g.N), e.mulc(col.get(), 4))), v, 4 * (r * g.N + j)));
      }
    return out;
  };

  const colsFor = (mr: number): X[] => {
    const cEnd = fn.i32();
    // Full tiles of NR columns; the last N % NR columns (only ever at the end: column splits fall
    // on multiples of NR) as one narrower tile rather than single columns.
    const rest = g.N % NR;
    return [
      cEnd.set(e.sub(nhi.get(), e.i32(NR - 1))),
      e.for(col, nlo.get(), cEnd.get(), NR, tile(mr, NR)),
      ...(rest ? [e.if(m.i32.eq(nhi.get(), e.i32(g.N)), [col.set(e.i32(g.N - rest)), ...tile(mr, rest)])] : []),
    ];
  };
  const rEnd = fn.i32();
  return wrap([
    rEnd.set(e.sub(mhi.get(), e.i32(MR - 1))),
    e.for(row, mlo.get(), rEnd.get(), MR, colsFor(MR)),
    e.for(row, row.get(), mhi.get(), 1, colsFor(1)),
  ]);
}

function columnsForm(ctx: KernelCtx, fn: Fn, g: Gemm, parallel: boolean): X[] {
  const { e } = ctx;
  const m = e.m;
  const { mlo, mhi, wrap } = split(ctx, fn, { ...g, N: 0 }, parallel, 4, 1);
  const row = fn.i32();
  const col = fn.i32();
  const k = fn.i32();
  const acc = fn.v128();
  const pa = fn.i32();
  const pb = fn.i32();
  // 4 rows of C (a vector of A's contiguous column) against one column n.
  const block = (lanes: number): X[] => {
    const out: X[] = [
      acc.set(g.bias === undefined ? e.vzero() : e.vsplatLoad(e.add(e.i32(g.bias), e.mulc(col.get(), 4)))),
      pa.set(e.add(base(e, g.a), e.mulc(row.get(), 4))),
      pb.set(e.add(base(e, g.b), e.mulc(col.get(), 4 * g.bN))),
      e.forc(k, 0, g.K, 1, [acc.set(e.madd(e.vloadN(pa.get(), lanes), e.vsplatLoad(pb.get()), acc.get())), pa.set(e.addc(pa.get(), 4 * g.aK)), pb.set(e.addc(pb.get(), 4 * g.bK))]),
    ];
    for (let l = 0; l < lanes; l++) out.push(m.v128.store32_lane(4 * (l * g.N), 4, l, e.add(base(e, g.c), e.add(e.mulc(row.get(), 4 * g.N), e.mulc(col.get(), 4))), acc.get()));
    return out;
  };
  const rEnd = fn.i32();
  return wrap([
    rEnd.set(e.sub(mhi.get(), e.i32(3))),
    e.for(row, mlo.get(), rEnd.get(), 4, [e.forc(col, 0, g.N, 1, block(4))]),
    e.for(row, row.get(), mhi.get(), 1, [e.forc(col, 0, g.N, 1, block(1))]),
  ]);
}

function scalarForm(ctx: KernelCtx, fn: Fn, g: Gemm): X[] {
  const { e } = ctx;
  const m = e.m;
  const row = fn.i32();
  const col = fn.i32();
  const k = fn.i32();
  const s = fn.f32();
  return [
    e.forc(row, 0, g.M, 1, [
      e.forc(col, 0, g.N, 1, [
        s.set(g.bias === undefined ? e.f32(0) : e.loadf(e.add(e.i32(g.bias), e.mulc(col.get(), 4)))),
        e.forc(k, 0, g.K, 1, [
          s.set(m.f32.add(s.get(), m.f32.mul(e.loadf(e.add(base(e, g.a), e.add(e.mulc(row.get(), 4 * g.aM), e.mulc(k.get(), 4 * g.aK)))), e.loadf(e.add(base(e, g.b), e.add(e.mulc(k.get(), 4 * g.bK), e.mulc(col.get(), 4 * g.bN))))))),
        ]),
        e.storef(e.add(base(e, g.c), e.add(e.mulc(row.get(), 4 * g.N), e.mulc(col.get(), 4))), s.get()),
      ]),
    ]),
  ];
}
