import { numel, type Shape } from '../../ir/shape.ts';
import { roundUp, type Emitter, type Fn, type Local, type X } from './emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, span, type KernelCtx } from './kernel.ts';

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
 * Large products other than x·wᵀ run the rows form on packed copies of their operands (see
 * `packing`): B whole when A is read along k in place (a linear layer's dx = g·w), A and B per
 * block of k otherwise (its dw = gᵀ·x over a long batch, which also sums db as it packs gᵀ).
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
  /**
   * Where to write Σ_k A(m, k) for every m as well (a linear layer's bias gradient, A being gᵀ),
   * summed in f64 in order of k; emitGemm returns whether it did (only while packing A).
   */
  rowSums?: number;
}

const base = (e: Emitter, v: number | Local): X => (typeof v === 'number' ? e.i32(v) : v.get());

export function emitGemm(ctx: KernelCtx, g: Gemm): boolean {
  const packed = packing(g);
  if (packed === 'blocks') return packedBlocks(ctx, g);
  if (packed === 'whole') packedWhole(ctx, g);
  else ctx.phase((fn, tid) => {
    const work = g.M * g.N * g.K;
    const parallel = ctx.T > 1 && work >= 4 * PARALLEL_MIN;
    const body = gemmBody(ctx, fn, g, parallel);
    return parallel ? body : onThread0(ctx.e, tid, body);
  });
  return false;
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

/**
 * One rows-form tile after another: mr (1-4) rows × up to 8 columns of C at (row, col), the
 * operands read from wherever the caller keeps them. A's row r of the tile is at `a` + r·aRow and
 * moves aStep bytes a k; B's 4-lane vector j at `b` + 16j, moving bStep bytes a k; k runs kLen
 * times. `carry` (an i32 expression): C already holds the sum over earlier k blocks.
 */
interface TileSource {
  a: X;
  aRow: number;
  aStep: number;
  b: X;
  bStep: number;
  kLen: number | Local;
  carry?: X;
}

function rowsTiles(ctx: KernelCtx, fn: Fn, g: Gemm, { MR, NB }: Shape2) {
  const { e } = ctx;
  const m = e.m;
  const row = fn.i32();
  const col = fn.i32();
  const k = fn.i32();
  const pa = fn.i32();
  const pb = fn.i32();
  const pc = fn.i32();
  const NV = NB / 4;
  const acc = Array.from({ length: NV * MR }, () => fn.v128());
  const bv = Array.from({ length: NV }, () => fn.v128());
  const av = fn.v128();
  const tile = (mr: number, lanes: number[], s: TileSource): X[] => {
    const nv = lanes.length;
    const kBody: X[] = [];
    lanes.forEach((l, j) => kBody.push(bv[j]!.set(e.vloadN(pb.get(), l, 16 * j))));
    for (let r = 0; r < mr; r++) {
      kBody.push(av.set(e.vsplatLoad(pa.get(), r * s.aRow)));
      for (let j = 0; j < nv; j++) kBody.push(acc[r * NV + j]!.set(e.madd(av.get(), bv[j]!.get(), acc[r * NV + j]!.get())));
    }
    kBody.push(pa.set(e.addc(pa.get(), s.aStep)), pb.set(e.addc(pb.get(), s.bStep)));
    const out: X[] = [pa.set(s.a), pb.set(s.b), pc.set(e.add(base(e, g.c), e.add(e.mulc(row.get(), 4 * g.N), e.mulc(col.get(), 4))))];
    for (let r = 0; r < mr; r++)
      for (let j = 0; j < nv; j++) {
        const first = g.bias === undefined ? e.vzero() : e.vloadN(e.add(e.i32(g.bias + 16 * j), e.mulc(col.get(), 4)), lanes[j]!);
        const init = s.carry === undefined ? first : m.select(e.copyExpr(s.carry), e.vloadN(pc.get(), lanes[j]!, 4 * (r * g.N + 4 * j)), first);
        out.push(acc[r * NV + j]!.set(init));
      }
    out.push(typeof s.kLen === 'number' ? e.forc(k, 0, s.kLen, 1, kBody) : e.for(k, e.i32(0), s.kLen.get(), 1, kBody));
    for (let r = 0; r < mr; r++) for (let j = 0; j < nv; j++) out.push(e.vstoreN(pc.get(), acc[r * NV + j]!.get(), lanes[j]!, 4 * (r * g.N + 4 * j)));
    return out;
  };
  /**
   * Tiles over rows [rlo, rhi) × columns [clo, chi): columns outer (full 8-column blocks up to
   * the last N % 8, which come as one narrower block where chi is N), rows inner (MR-row tiles
   * while they fit, then single rows). `src(mr, lanes)` says where the tile at (row, col) reads.
   */
  const sweep = (rlo: Local, rhi: Local, clo: Local, chi: Local, rowsOuter: boolean, src: (mr: number) => TileSource): X[] => {
    const NF = g.N - (g.N % NB);
    const rEnd = fn.i32();
    const cEnd = fn.i32();
    const rows = (lanes: number[]): X[] => [
      rEnd.set(e.sub(rhi.get(), e.i32(MR - 1))),
      // e.for leaves `row` at the first row it did not run: the single rows start there.
      e.for(row, rlo.get(), rEnd.get(), MR, tile(MR, lanes, src(MR))),
      e.for(row, row.get(), rhi.get(), 1, tile(1, lanes, src(1))),
    ];
    const cols = (mr: number): X[] => [
      cEnd.set(m.select(m.i32.lt_s(chi.get(), e.i32(NF)), chi.get(), e.i32(NF))),
      e.for(col, clo.get(), cEnd.get(), NB, tile(mr, lanesOf(NB), src(mr))),
      ...(g.N % NB ? [e.if(m.i32.eq(chi.get(), e.i32(g.N)), [col.set(e.i32(NF)), ...tile(mr, lanesOf(g.N % NB), src(mr))])] : []),
    ];
    if (rowsOuter) return [rEnd.set(e.sub(rhi.get(), e.i32(MR - 1))), e.for(row, rlo.get(), rEnd.get(), MR, cols(MR)), e.for(row, row.get(), rhi.get(), 1, cols(1))];
    return [
      cEnd.set(m.select(m.i32.lt_s(chi.get(), e.i32(NF)), chi.get(), e.i32(NF))),
      e.for(col, clo.get(), cEnd.get(), NB, rows(lanesOf(NB))),
      ...(g.N % NB ? [e.if(m.i32.eq(chi.get(), e.i32(g.N)), [col.set(e.i32(NF)), ...rows(lanesOf(g.N % NB))])] : []),
    ];
  };
  return { row, col, sweep };
}

/**
 * The rows form in one pass over k, rows outer: A read in place, B too or from `packed` (its
 * [column block][k][8] panels, `panel` bytes each).
 */
function rowsForm(ctx: KernelCtx, fn: Fn, g: Gemm, parallel: boolean, packed?: { at: number; panel: number }): X[] {
  const { e } = ctx;
  const m = e.m;
  const shape = packed ? PACKED : { MR: 4, NB: 8 };
  const { mlo, mhi, nlo, nhi, wrap } = split(ctx, fn, g, parallel, shape.MR, shape.NB);
  const { row, col, sweep } = rowsTiles(ctx, fn, g, shape);
  return wrap(
    sweep(mlo, mhi, nlo, nhi, true, () => ({
      a: e.add(base(e, g.a), e.mulc(row.get(), 4 * g.aM)),
      aRow: 4 * g.aM,
      aStep: 4 * g.aK,
      ...(packed
        ? { b: e.add(e.i32(packed.at), e.mulc(m.i32.div_u(col.get(), e.i32(shape.NB)), packed.panel)), bStep: 4 * shape.NB }
        : { b: e.add(base(e, g.b), e.mulc(col.get(), 4 * g.bN)), bStep: 4 * g.bK }),
      kLen: g.K,
    })),
  );
}

/**
 * Packing, for the large products (a transformer's linear layers: thousands of rows, a few
 * hundred columns): read in place, a tile's k-th row of B sits a whole row of B (often a power of
 * two bytes) after its (k-1)-th, so a tile's 128 rows share a handful of cache sets and evict each
 * other; A's columns likewise when A is stored transposed (a weight gradient gᵀ·x). Copied once
 * into panels, [column block][k][8] for B and [row block][k][4] for A, every tile reads both
 * sequentially from L1/L2. The copies are O(K·(M + N)) against the product's O(M·N·K).
 */
const PACK_MIN = 1 << 20;
/** The longest k a block of 'blocks' packing covers: a tile's panels (1.5 and 6 KiB) stay in L1. */
const KC_MAX = 128;
/** A register tile: MR rows × NB columns (NB a multiple of 4). */
interface Shape2 {
  MR: number;
  NB: number;
}

/**
 * The packed products' tile, 3×12: 9 accumulators, 3 vectors of B and the 3 splats of A that
 * V8 loads ahead fit x64's 15 allocatable vector registers; 6 loads feed 9 multiply-adds (4×8:
 * 6 for 8). 6×8 (12 for 8 loads) spills accumulators in V8's schedule.
 */
const PACKED: Shape2 = { MR: 3, NB: 12 };

/** Whether emitGemm packs `g`, and how: B once for all k ('whole', A read in place along k), or A and B per block of k ('blocks'). */
function packing(g: Gemm): 'whole' | 'blocks' | undefined {
  if (g.N < 8 || g.M * g.N * g.K < PACK_MIN || (g.bN !== 1 && g.bK !== 1)) return undefined;
  // x·wᵀ, both read along k: the dots form reads them in place as fast.
  if (g.aK === 1 && g.bN !== 1) return undefined;
  // A k short enough to sweep in one pass (a small batch's weight gradient) is read in place;
  // B is worth a packed copy when many rows of tiles read it.
  if (g.aK === 1 && g.K <= 1024) return g.M >= 256 ? 'whole' : undefined;
  return g.K > KC_MAX ? 'blocks' : undefined;
}

/**
 * Copies B(k0 + k, col .. col + NB - 1) for k < kLen into a [kLen][NB] panel at `dst`, lanes past
 * N zero. B's rows contiguous (bN = 1): vector loads; else a gather.
 */
function packB(ctx: KernelCtx, fn: Fn, g: Gemm, dst: X, col: X, k0: X, kLen: number | Local, cols: number): X[] {
  const { e } = ctx;
  const m = e.m;
  const { NB } = PACKED;
  const [k, src, out] = [fn.i32(), fn.i32(), fn.i32()];
  const vec = (j: number): X => {
    const n = Math.max(0, Math.min(4, cols - 4 * j));
    if (n === 0) return e.vzero();
    if (g.bN === 1) return e.vloadN(src.get(), n, 16 * j);
    let v = e.vzero();
    for (let i = 0; i < n; i++) v = m.f32x4.replace_lane(v, i, e.loadf(src.get(), 4 * (4 * j + i) * g.bN));
    return v;
  };
  const body = [...Array.from({ length: NB / 4 }, (_, j) => e.vstore(out.get(), vec(j), 16 * j)), src.set(e.addc(src.get(), 4 * g.bK)), out.set(e.addc(out.get(), 4 * NB))];
  return [
    src.set(e.add(base(e, g.b), e.add(e.mulc(k0, 4 * g.bK), e.mulc(col, 4 * g.bN)))),
    out.set(dst),
    typeof kLen === 'number' ? e.forc(k, 0, kLen, 1, body) : e.for(k, e.i32(0), kLen.get(), 1, body),
  ];
}

/**
 * Copies A(row .. row + rows - 1, k0 + k) for k < kLen into a [kLen][MR] panel at `dst`.
 * With `sums` (⌈MR/2⌉ f64x2 at that address): adds each k's values to them, in f64, in order of k.
 */
function packA(ctx: KernelCtx, fn: Fn, g: Gemm, dst: X, row: X, k0: X, kLen: Local, rows: number, sums?: X): X[] {
  const { e } = ctx;
  const m = e.m;
  const [k, src, out, at] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const { MR } = PACKED;
  const v = lanesOf(MR).map(() => fn.v128());
  const f64 = Array.from({ length: Math.ceil(MR / 2) }, () => fn.v128());
  const parts = lanesOf(rows);
  const body: X[] = [];
  parts.forEach((n, j) => {
    let load: X;
    if (g.aM === 1) load = e.vloadN(src.get(), n, 16 * j);
    else {
      load = e.vzero();
      for (let i = 0; i < n; i++) load = m.f32x4.replace_lane(load, i, e.loadf(src.get(), 4 * (4 * j + i) * g.aM));
    }
    body.push(v[j]!.set(load), e.vstoreN(out.get(), v[j]!.get(), n, 16 * j));
  });
  body.push(src.set(e.addc(src.get(), 4 * g.aK)), out.set(e.addc(out.get(), 4 * MR)));
  const halves = Math.ceil(rows / 2);
  if (sums !== undefined)
    for (let h = 0; h < halves; h++) {
      const x = v[h >> 1]!.get();
      const pair = h % 2 ? m.i8x16.shuffle(x, e.copyExpr(x), [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]) : x;
      body.push(f64[h]!.set(m.f64x2.add(f64[h]!.get(), m.f64x2.promote_low_f32x4(pair))));
    }
  const range = Array.from({ length: sums === undefined ? 0 : halves }, (_, h) => h);
  return [
    src.set(e.add(base(e, g.a), e.add(e.mulc(row, 4 * g.aM), e.mulc(k0, 4 * g.aK)))),
    out.set(dst),
    ...(sums === undefined ? [] : [at.set(sums), ...range.map((h) => f64[h]!.set(e.vload(at.get(), 16 * h)))]),
    e.for(k, e.i32(0), kLen.get(), 1, body),
    ...range.map((h) => e.vstore(at.get(), f64[h]!.get(), 16 * h)),
  ];
}

/**
 * B packed whole (K × N, a layer's weight) into shared scratch by a first phase, every thread a
 * share of its column blocks; then the rows form over A in place, rows shared out as they come.
 */
function packedWhole(ctx: KernelCtx, g: Gemm): void {
  const { e } = ctx;
  const m = e.m;
  const { NB } = PACKED;
  const blocks = Math.ceil(g.N / NB);
  const panel = 4 * NB * g.K;
  const bp = ctx.sharedScratch(blocks * panel);
  ctx.phase((fn, tid) => {
    const s = span(e, fn, tid, blocks);
    const t = fn.i32();
    const full = Math.floor(g.N / NB);
    const pack = (cols: number) => packB(ctx, fn, g, e.add(e.i32(bp), e.mulc(t.get(), panel)), e.mulc(t.get(), NB), e.i32(0), g.K, cols);
    return [
      ...s.init,
      e.for(t, s.lo.get(), m.select(m.i32.lt_s(s.hi.get(), e.i32(full)), s.hi.get(), e.i32(full)), 1, pack(NB)),
      ...(g.N % NB ? [e.if(m.i32.eq(s.hi.get(), e.i32(blocks)), [t.set(e.i32(full)), ...pack(g.N % NB)])] : []),
    ];
  });
  ctx.phase((fn) => rowsForm(ctx, fn, g, ctx.T > 1, { at: bp, panel }));
}

/**
 * A long k (a weight gradient's batch) in blocks of KC: for each block, every thread packs the A
 * rows and B columns of its own share of C into its scratch and runs its tiles, columns outer
 * (a B panel stays in L1 while the A panels stream by); blocks after the first add to C. The
 * shares are fixed (rows in 4-row units, or columns in 8-column blocks when there are few rows),
 * so each element of C is summed over k in the same order on any number of threads.
 */
function packedBlocks(ctx: KernelCtx, g: Gemm): boolean {
  const { e } = ctx;
  const m = e.m;
  const { MR, NB } = PACKED;
  const KC = g.K > KC_MAX ? Math.ceil(g.K / Math.ceil(g.K / KC_MAX)) : g.K;
  const T = ctx.T > 1 && g.M * g.N * g.K >= 4 * PARALLEL_MIN ? ctx.T : 1;
  const byRows = g.M >= 2 * MR * T || g.N < NB * T;
  const rowsEach = byRows ? MR * Math.ceil(Math.ceil(g.M / MR) / T) : roundUp(g.M, MR);
  const colsEach = byRows ? roundUp(g.N, NB) : NB * Math.ceil(Math.ceil(g.N / NB) / T);
  const sumBytes = 16 * Math.ceil(MR / 2);
  ctx.phase((fn, tid) => {
    const [ap, bp, sp, kb, kLen, t] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    const sv = fn.v128();
    const whole = (n: number) => {
      const [lo, hi] = [fn.i32(), fn.i32()];
      return { lo, hi, init: [lo.set(e.i32(0)), hi.set(e.i32(n))] };
    };
    const rs = byRows && T > 1 ? span(e, fn, tid, g.M, MR) : whole(g.M);
    const cs = !byRows && T > 1 ? span(e, fn, tid, g.N, NB) : whole(g.N);
    // Panels of full blocks while they fit, then the partial one at the end of A or B.
    const panels = (lo: Local, hi: Local, unit: number, total: number, pack: (n: number) => X[]): X[] => {
      const full = total - (total % unit);
      return [
        e.for(t, lo.get(), m.select(m.i32.lt_s(hi.get(), e.i32(full)), hi.get(), e.i32(full)), unit, pack(unit)),
        ...(total % unit ? [e.if(m.i32.eq(hi.get(), e.i32(total)), [t.set(e.i32(full)), ...pack(total % unit)])] : []),
      ];
    };
    // Row r of this thread's rows is lane r % MR of A's panel r / MR.
    const aPanel = (r: X, bytes: number) => e.mulc(m.i32.div_u(e.sub(r, rs.lo.get()), e.i32(MR)), bytes);
    const bPanel = (c: X) => e.mulc(m.i32.div_u(e.sub(c, cs.lo.get()), e.i32(NB)), 4 * NB * KC);
    const { row, col, sweep } = rowsTiles(ctx, fn, g, PACKED);
    const tiles = sweep(rs.lo, rs.hi, cs.lo, cs.hi, false, () => ({
      a: e.add(ap.get(), e.add(aPanel(row.get(), 4 * MR * KC), e.mulc(m.i32.rem_u(e.sub(row.get(), rs.lo.get()), e.i32(MR)), 4))),
      aRow: 4,
      aStep: 4 * MR,
      b: e.add(bp.get(), bPanel(col.get())),
      bStep: 4 * NB,
      kLen,
      carry: kb.get(),
    }));
    // The row sums of A: ⌈MR/2⌉ f64x2 per panel in scratch, over all blocks; written to rowSums by
    // the threads whose rows they are (thread 0 when the split is by columns).
    const sums = (r: X) => e.add(sp.get(), aPanel(r, sumBytes));
    const sumsOut = (rows: number): X[] =>
      lanesOf(rows).flatMap((n, j) => {
        const half = (h: number) => m.f32x4.demote_f64x2_zero(e.vload(sums(t.get()), 16 * (2 * j + h)));
        const v = m.i8x16.shuffle(half(0), n > 2 ? half(1) : e.vzero(), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
        return [sv.set(v), e.vstoreN(e.add(e.i32(g.rowSums!), e.mulc(t.get(), 4)), sv.get(), n, 16 * j)];
      });
    return [
      ...rs.init,
      ...cs.init,
      ap.set(ctx.threadScratch(4 * KC * rowsEach, tid)),
      bp.set(ctx.threadScratch(4 * KC * colsEach, tid)),
      ...(g.rowSums === undefined ? [] : [sp.set(ctx.threadScratch((sumBytes * rowsEach) / MR, tid)), m.memory.fill(sp.get(), e.i32(0), e.i32((sumBytes * rowsEach) / MR))]),
      e.forc(kb, 0, g.K, KC, [
        kLen.set(m.select(m.i32.lt_s(e.addc(kb.get(), KC), e.i32(g.K)), e.i32(KC), e.sub(e.i32(g.K), kb.get()))),
        ...panels(rs.lo, rs.hi, MR, g.M, (rows) => packA(ctx, fn, g, e.add(ap.get(), aPanel(t.get(), 4 * MR * KC)), t.get(), kb.get(), kLen, rows, g.rowSums === undefined ? undefined : sums(t.get()))),
        ...panels(cs.lo, cs.hi, NB, g.N, (cols) => packB(ctx, fn, g, e.add(bp.get(), bPanel(t.get())), t.get(), kb.get(), kLen, cols)),
        ...tiles,
      ]),
      ...(g.rowSums === undefined ? [] : byRows || T === 1 ? panels(rs.lo, rs.hi, MR, g.M, sumsOut) : onThread0(e, tid, panels(rs.lo, rs.hi, MR, g.M, sumsOut))),
    ];
  });
  return g.rowSums !== undefined;
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
