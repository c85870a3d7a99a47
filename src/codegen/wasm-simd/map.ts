import { numel, type Shape } from '../../ir/shape.ts';
import type { Fn, Local, X } from './emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, span, type KernelCtx } from './kernel.ts';

/** A tensor read by a map or reduction, broadcast (NumPy rules) to the iteration domain. */
export interface Operand {
  readonly addr: number;
  readonly shape: Shape;
  /** Read from the run's RowFill instead of addr; its shape broadcasts over the runs. */
  readonly filled?: true;
}

/**
 * A domain-sized buffer that a reduction fills a run (of its innermost dimension) at a time,
 * just before the run, for `filled` operands to read there while it is in cache: a value made a
 * plane at a time (batch_norm_grad_stats' pool backward), kept for a later phase to read.
 */
export interface RowFill {
  /** The buffer's address. */
  readonly at: number;
  /** Statements filling the run whose first element is `offset` (flat, in the domain), at `base`. */
  fill(fn: Fn, offset: Local, base: Local): X[];
}

/** A run's fill: its offset, where it goes, then the statements; `base` is where `filled` operands read. */
function fillRun(c: KernelCtx, fn: Fn, spec: RowFill, offset: X): { base: Local; stmts: X[] } {
  const { e } = c;
  const [off, base] = [fn.i32(), fn.i32()];
  return { base, stmts: [off.set(offset), base.set(e.add(e.i32(spec.at), e.mulc(off.get(), 4))), ...spec.fill(fn, off, base)] };
}

/** Element strides of `from` read as if broadcast to `to` (0 along broadcast dimensions). */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  const lead = to.length - from.length;
  const st = new Array<number>(to.length).fill(0);
  let acc = 1;
  for (let d = to.length - 1; d >= 0; d--) {
    const n = d < lead ? 1 : from[d - lead]!;
    st[d] = n === 1 ? 0 : acc;
    acc *= n;
  }
  return st;
}

/** A dimension of a loop nest: its size and each operand's element stride along it. */
export interface Dim {
  n: number;
  strides: number[];
  /** For reductions: summed over. */
  reduced?: boolean;
}

/**
 * Drops size-1 dimensions and merges neighbours that every operand walks contiguously (or
 * broadcasts along both), so [N, C, H, W] + [1, C, 1, 1] becomes [N, C, H·W] and same-shape
 * operands become one flat dimension.
 */
export function collapse(dims: readonly Dim[]): Dim[] {
  const kept = dims.filter((d) => d.n > 1);
  const out: Dim[] = [];
  for (let i = kept.length - 1; i >= 0; i--) {
    const d = kept[i]!;
    const inner = out[0];
    if (inner && inner.reduced === d.reduced && d.strides.every((s, j) => s === inner.strides[j]! * inner.n)) {
      out[0] = { n: d.n * inner.n, strides: inner.strides, reduced: inner.reduced };
    } else {
      out.unshift({ n: d.n, strides: [...d.strides], reduced: d.reduced });
    }
  }
  return out;
}

/** What f may ask of the element it computes. */
export interface Lanes {
  /** The flat indices of the 4 elements in the domain (i32x4). */
  index(): X;
}

/** outs = f(ins...) elementwise with broadcasting; f maps f32x4 values to one f32x4 per output. */
export interface MapSpec {
  /** One output (or `outs`, several; all have the domain's shape). */
  out?: Operand;
  outs?: readonly Operand[];
  ins: readonly Operand[];
  f: (v: X[], fn: Fn, at: Lanes) => X | X[];
  /** Statements every thread runs first (scalars f reads from locals). */
  prologue?: (fn: Fn) => X[];
  /**
   * Statements after each row (a run of the innermost dimension, `length` elements from flat
   * index `offset`), on the thread that wrote it, while it is in cache: batch_norm_stats' pool of
   * the plane it normalized. Rows are then never split between threads.
   */
  after?: (fn: Fn, offset: Local, length: number) => X[];
}

/**
 * The statements of an elementwise map (one phase, or part of one: foreach runs several):
 * collapsed dimensions, the innermost vectorised 4 lanes at a time with a partial-vector tail
 * (loads that read only the valid lanes), broadcast operands splatted once per row. Threads split
 * the outermost dimension, or the flat range in 4-aligned pieces; a map too small to split runs
 * on thread `thread` (default 0). An output may alias a same-shape input: every value of a vector
 * is computed before any is stored, so each element is read before it is written.
 */
export function mapBody(c: KernelCtx, fn: Fn, tid: Local, spec: MapSpec, thread = 0): X[] {
  const { e } = c;
  const outs = spec.outs ?? [spec.out!];
  const shape = outs[0]!.shape;
  const total = numel(shape);
  const dims = collapse(shape.map((n, d) => ({ n, strides: [...spec.ins.map((x) => broadcastStrides(x.shape, shape)[d]!), ...outs.map(() => strideOut(shape, d))] })));
  const parallel = total >= PARALLEL_MIN && e.T > 1 && !(spec.after && dims.length < 2);
  const pro = spec.prologue?.(fn) ?? [];
  const body = mapNest(c, fn, tid, dims, spec, outs, parallel);
  if (parallel || e.T === 1) return [...pro, ...body];
  return [e.if(e.m.i32.eq(tid.get(), e.i32(thread % e.T)), [...pro, ...body])];
}

function strideOut(shape: Shape, d: number): number {
  let s = 1;
  for (let i = d + 1; i < shape.length; i++) s *= shape[i]!;
  return s;
}

/** Elements per chunk of a flat parallel map (a multiple of 4): 64 KiB of each operand, some µs. */
const MAP_CHUNK = 16384;

const IOTA = new Uint8Array(new Int32Array([0, 1, 2, 3]).buffer);

function mapNest(c: KernelCtx, fn: Fn, tid: Local, dims: Dim[], spec: MapSpec, outs: readonly Operand[], parallel: boolean): X[] {
  const { e } = c;
  const m = e.m;
  const nIn = spec.ins.length;
  const bases = [...spec.ins.map((x) => x.addr), ...outs.map((o) => o.addr)];
  const results = outs.map(() => fn.v128());
  const asList = (r: X | X[]) => (Array.isArray(r) ? r : [r]);
  if (dims.length === 0) {
    // A scalar: one lane.
    const at: Lanes = { index: () => m.v128.const(IOTA) };
    const v = asList(spec.f(spec.ins.map((x) => e.vloadN(e.i32(x.addr), 1)), fn, at));
    return [...v.map((x, j) => results[j]!.set(x)), ...outs.map((o, j) => e.vstoreN(e.i32(o.addr), results[j]!.get(), 1))];
  }
  const inner = dims[dims.length - 1]!;
  const outer = dims.slice(0, -1);
  const ptrs = bases.map(() => fn.i32());
  const idx = outer.map(() => fn.i32());
  const splats = spec.ins.map((_, j) => (inner.strides[j] === 0 ? fn.v128() : undefined));
  const L = inner.n;
  const isOut = (j: number) => j >= nIn;
  // The flat index of the current vector's first element: where the first output's pointer is.
  const at: Lanes = { index: () => m.i32x4.add(m.i32x4.splat(m.i32.shr_u(e.sub(ptrs[nIn]!.get(), e.i32(outs[0]!.addr)), e.i32(2))), m.v128.const(IOTA)) };

  // The row: pointers at the row start (+ lo for a split flat range), splats, vector loop, tail.
  const row = (lo: X | null, hi: X | null): X[] => {
    const stmts: X[] = [];
    ptrs.forEach((p, j) => {
      let a: X = e.i32(bases[j]!);
      outer.forEach((d, k) => (a = e.add(a, e.mulc(idx[k]!.get(), 4 * d.strides[j]!))));
      if (lo && (isOut(j) || inner.strides[j] === 1)) a = e.add(a, e.mulc(e.copyExpr(lo), 4));
      stmts.push(p.set(a));
    });
    const start = spec.after && fn.i32();
    if (start) {
      if (lo || hi) throw new Error('wasm map: a row split between threads cannot run `after`');
      stmts.push(start.set(m.i32.shr_u(e.sub(ptrs[nIn]!.get(), e.i32(outs[0]!.addr)), e.i32(2))));
    }
    splats.forEach((s, j) => s && stmts.push(s.set(e.vsplatLoad(ptrs[j]!.get()))));
    const vals = (n: number) => spec.ins.map((_, j) => (splats[j] ? splats[j]!.get() : e.vloadN(ptrs[j]!.get(), n)));
    const step = (n: number): X[] => {
      const v = asList(spec.f(vals(n), fn, at));
      return [...v.map((x, j) => results[j]!.set(x)), ...outs.map((_, j) => e.vstoreN(ptrs[nIn + j]!.get(), results[j]!.get(), n))];
    };
    const advance = ptrs.map((p, j) => (isOut(j) || inner.strides[j] === 1 ? p.set(e.addc(p.get(), 16)) : e.nop()));
    const i = fn.i32();
    const L4 = L - (L % 4);
    if (lo && hi) {
      // Split flat range [lo, hi): lo, hi are multiples of 4 except hi = L for the last thread.
      const end = fn.i32();
      stmts.push(end.set(m.select(m.i32.lt_s(e.copyExpr(hi), e.i32(L4)), e.copyExpr(hi), e.i32(L4))));
      stmts.push(e.for(i, e.copyExpr(lo), end.get(), 4, [...step(4), ...advance]));
      if (L % 4) stmts.push(e.if(m.i32.eq(e.copyExpr(hi), e.i32(L)), step(L % 4)));
    } else {
      stmts.push(e.forc(i, 0, L4, 4, [...step(4), ...advance]));
      if (L % 4) stmts.push(...step(L % 4));
    }
    if (start) stmts.push(...spec.after!(fn, start, L));
    return stmts;
  };

  if (outer.length === 0) {
    if (!parallel) return row(null, null);
    // Chunks of MAP_CHUNK elements taken as threads come (sharedLoop): a thread that loses its
    // core holds up one chunk, not half the map.
    const [q, lo, hi] = [fn.i32(), fn.i32(), fn.i32()];
    const chunks = Math.ceil(L / MAP_CHUNK);
    return sharedLoop(c, fn, q, chunks, [lo.set(e.mulc(q.get(), MAP_CHUNK)), hi.set(m.select(m.i32.lt_s(e.addc(lo.get(), MAP_CHUNK), e.i32(L)), e.addc(lo.get(), MAP_CHUNK), e.i32(L))), ...row(lo.get(), hi.get())]);
  }
  // Outer loops, the outermost shared out between threads as they come.
  let body = row(null, null);
  for (let k = outer.length - 1; k >= 0; k--) {
    if (k === 0 && parallel) {
      body = sharedLoop(c, fn, idx[0]!, outer[0]!.n, body);
    } else {
      body = [e.forc(idx[k]!, 0, outer[k]!.n, 1, body)];
    }
  }
  return body;
}

/** out[kept] = post(Σ over reduced dims of f(ins...)), ins broadcast to `domain`. */
export interface ReduceSpec {
  domain: Shape;
  /** Per domain dimension: summed over. */
  reduced: readonly boolean[];
  /** Output: the kept dimensions, row-major (or one per sum, when f gives several). */
  out: number | readonly number[];
  ins: readonly Operand[];
  /**
   * The term (or terms: several sums over the same operands in one pass, each summed exactly as
   * it would be alone) at a vector of elements; the operands' values are local.gets (copyExpr one
   * to read it twice). With `stmts`, those run first at each vector (a value the terms share,
   * set into a local).
   */
  f: (v: X[], fn: Fn) => X | X[] | { stmts: X[]; terms: X[] };
  /** Applied to each f32 sum before it is stored (a mean's 1/count). */
  post?: (sum: X) => X;
  prologue?: (fn: Fn) => X[];
  /** Filled before each run of the innermost (reduced) dimension, for the `filled` operands. */
  fill?: RowFill;
}

/**
 * Emits a reduction. Loop order: kept dimensions outermost (split across threads), then the
 * reduced ones, so every sum lives in registers and is stored once.
 * - Innermost dimension reduced (per-channel sums over H·W): each contiguous run is summed in
 *   4 f32 lanes (its even and odd vectors apart, then added), and runs are added into f64 lanes,
 *   so long sums (N·H·W ≈ 43k terms) lose no more than a run's rounding.
 * - Innermost dimension kept (column sums over a batch): 4 outputs per vector, the reduced
 *   dimensions walked with strided vector loads.
 * The loops depend only on the domain and the operands' shapes, so a sum computed with others
 * in one pass has the bits it has alone over the same operands.
 */
export function emitReduce(c: KernelCtx, spec: ReduceSpec): void {
  const dom = spec.domain;
  const outs = typeof spec.out === 'number' ? [spec.out] : spec.out;
  const outStrides: number[] = new Array<number>(dom.length).fill(0);
  let acc = 1;
  for (let d = dom.length - 1; d >= 0; d--) {
    if (!spec.reduced[d]) {
      outStrides[d] = acc;
      acc *= dom[d]!;
    }
  }
  // With a fill, one more column: the domain's own strides, which give a run's offset.
  const raw: Dim[] = dom.map((n, d) => ({ n, reduced: spec.reduced[d], strides: [...spec.ins.map((x) => broadcastStrides(x.shape, dom)[d]!), outStrides[d]!, ...(spec.fill ? [strideOut(dom, d)] : [])] }));
  const dims = collapse(raw);
  const kept = dims.filter((d) => !d.reduced);
  const red = dims.filter((d) => d.reduced);
  // Every dimension has size 1: a run of one element.
  if (dims.length === 0) red.push({ n: 1, reduced: true, strides: new Array<number>(spec.ins.length + 1).fill(0) });
  const innerKept = dims.length > 0 && !dims[dims.length - 1]!.reduced;
  const total = numel(dom);
  if (spec.fill && innerKept) throw new Error('wasm reduce: a fill needs the innermost dimension reduced');
  c.phase((fn, tid) => {
    const pro = spec.prologue?.(fn) ?? [];
    const terms = termsOf(c, fn, spec, outs.length);
    if (innerKept) return [...pro, ...reduceInnerKept(c, fn, tid, kept, red, spec, outs, terms, total)];
    return [...pro, ...reduceInnerReduced(c, fn, tid, kept, red, spec, outs, terms, total)];
  });
}

/** The operands' values into locals, then f's terms: statements and the terms' values. */
type Terms = (vals: X[]) => { set: X[]; terms: X[] };

function termsOf(c: KernelCtx, fn: Fn, spec: ReduceSpec, count: number): Terms {
  const locals = spec.ins.map(() => fn.v128());
  return (vals) => {
    const r = spec.f(locals.map((l) => l.get()), fn);
    const { stmts, terms } = Array.isArray(r) ? { stmts: [], terms: r } : typeof r === 'object' ? r : { stmts: [], terms: [r] };
    if (terms.length !== count) throw new Error(`wasm reduce: ${terms.length} terms for ${count} outputs`);
    return { set: [...vals.map((v, j) => locals[j]!.set(v)), ...stmts], terms };
  };
}

/** Address expression for operand j given loop index locals of dims. */
function addrOf(c: KernelCtx, base: number, dims: readonly Dim[], idx: readonly Local[], j: number): X {
  const { e } = c;
  let a: X = e.i32(base);
  dims.forEach((d, k) => {
    if (d.strides[j] !== 0) a = e.add(a, e.mulc(idx[k]!.get(), 4 * d.strides[j]!));
  });
  return a;
}

function reduceInnerReduced(c: KernelCtx, fn: Fn, tid: Local, kept: Dim[], red: Dim[], spec: ReduceSpec, outs: readonly number[], termsAt: Terms, total: number): X[] {
  const { e } = c;
  const m = e.m;
  const nIn = spec.ins.length;
  const inner = red[red.length - 1]!;
  const outerRed = red.slice(0, -1);
  const L = inner.n;
  const keptIdx = kept.map(() => fn.i32());
  const redIdx = outerRed.map(() => fn.i32());
  const ptrs = spec.ins.map(() => fn.i32());
  const splats = spec.ins.map((_, j) => (inner.strides[j] === 0 ? fn.v128() : undefined));
  const runs = outs.map(() => fn.v128());
  const odd = outs.map(() => fn.v128());
  const lo64 = outs.map(() => fn.v128());
  const hi64 = outs.map(() => fn.v128());
  const t = fn.v128();
  const i = fn.i32();
  const manyRuns = outerRed.reduce((a, d) => a * d.n, 1) > 1;

  const vals = (n: number) => spec.ins.map((_, j) => (splats[j] ? splats[j]!.get() : e.vloadN(ptrs[j]!.get(), n)));
  const add = (n: number, mask: boolean, into: Local[] = runs): X[] => {
    const { set, terms } = termsAt(vals(n));
    return [...set, ...terms.map((x, k) => into[k]!.set(e.vadd(into[k]!.get(), mask ? maskLanes(c, x, n) : x)))];
  };
  const step = ptrs.map((p, j) => (inner.strides[j] === 1 ? p.set(e.addc(p.get(), 16)) : e.nop()));
  // Even and odd vectors of a run into two sums, added at its end: a single chain of adds waits
  // out each add's latency (measured: a batch-norm statistics pass 2× slower).
  const L8 = L - (L % 8);
  const rowDims = [...kept, ...outerRed];
  const rowIdx = [...keptIdx, ...redIdx];
  const filled = spec.fill && fillRun(c, fn, spec.fill, m.i32.shr_u(addrOf(c, 0, rowDims, rowIdx, nIn + 1), e.i32(2)));
  const runBody: X[] = [
    ...(filled ? filled.stmts : []),
    ...ptrs.map((p, j) => p.set(filled && spec.ins[j]!.filled ? filled.base.get() : addrOf(c, spec.ins[j]!.addr, rowDims, rowIdx, j))),
    ...splats.flatMap((s, j) => (s ? [s.set(e.vsplatLoad(ptrs[j]!.get()))] : [])),
    ...runs.map((r) => r.set(e.vzero())),
    ...(L8 > 0 ? [...odd.map((r) => r.set(e.vzero())), e.forc(i, 0, L8, 8, [...add(4, false), ...step, ...add(4, false, odd), ...step.map((x) => e.copyExpr(x))])] : []),
    ...(L % 8 >= 4 ? [...add(4, false), ...step.map((x) => e.copyExpr(x))] : []),
    ...(L % 4 ? add(L % 4, true) : []),
    ...(L8 > 0 ? runs.map((r, k) => r.set(e.vadd(r.get(), odd[k]!.get()))) : []),
  ];
  if (manyRuns) {
    runs.forEach((run, k) => {
      runBody.push(lo64[k]!.set(m.f64x2.add(lo64[k]!.get(), m.f64x2.promote_low_f32x4(run.get()))));
      runBody.push(hi64[k]!.set(m.f64x2.add(hi64[k]!.get(), m.f64x2.promote_low_f32x4(m.i8x16.shuffle(run.get(), run.get(), [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7])))));
    });
  }
  const sumOf = (k: number): X => {
    if (!manyRuns) return e.hsum(runs[k]!.get(), t);
    const s2 = m.f64x2.add(lo64[k]!.get(), hi64[k]!.get());
    return m.f32.demote(m.f64.add(m.f64x2.extract_lane(t.tee(s2), 0), m.f64x2.extract_lane(t.get(), 1)));
  };
  const store = outs.map((out, k) => m.f32.store(0, 4, addrOf(c, out, kept, keptIdx, nIn), spec.post ? spec.post(sumOf(k)) : sumOf(k)));
  const parallel = e.T > 1 && total >= PARALLEL_MIN && kept.length > 0 && kept[0]!.n >= e.T;
  const nestOf = (body: X[]): X[] => {
    let nest = body;
    for (let k = outerRed.length - 1; k >= 0; k--) nest = [e.forc(redIdx[k]!, 0, outerRed[k]!.n, 1, nest)];
    return nest;
  };
  if (manyRuns && kept.length === 1 && kept[0]!.n > 1) return inGroups(c, fn, tid, kept[0]!.n, keptIdx[0]!, parallel, nestOf, runBody, runs, lo64, hi64, store);
  const perOutput: X[] = [...(manyRuns ? [...lo64, ...hi64].map((l) => l.set(e.vzero())) : []), ...nestOf(runBody), ...store];
  let body = perOutput;
  for (let k = kept.length - 1; k >= 0; k--) {
    if (k === 0 && parallel) {
      // Each output summed whole by the thread that takes it: the same bits whoever does.
      body = sharedLoop(c, fn, keptIdx[0]!, kept[0]!.n, body);
    } else {
      body = [e.forc(keptIdx[k]!, 0, kept[k]!.n, 1, body)];
    }
  }
  return parallel ? body : onThread0(e, tid, body);
}

/** Kept indices (channels) a thread takes at a time when runs of several are walked together, at most. */
const GROUP = 4;

/**
 * Channels per group: at most GROUP, in a number of groups the threads share evenly where that
 * is possible (LeNet's 6 channels on 2 threads: 3 and 3, not 4 and 2). The bits do not depend
 * on it: each channel is summed whole, in its own order.
 */
function groupOf(K: number, T: number): number {
  const groups = Math.ceil(Math.ceil(K / GROUP) / T) * T;
  return Math.max(1, Math.ceil(K / groups));
}

/**
 * The sums of one kept dimension (channels, say) whose runs lie next to each other in memory
 * under the reduced dimensions (x [N, C, H·W]): GROUP consecutive outputs at a time, their runs
 * walked in memory order (for each n, the group's channels) instead of one output's runs a page
 * apart after another, which leaves the prefetcher a page per run. Each output's f64 sums wait in
 * the thread's scratch between its runs; every output still adds its runs in the same order,
 * whole on the thread that takes its group: the bits of the one-at-a-time loop.
 */
function inGroups(c: KernelCtx, fn: Fn, tid: Local, K: number, k: Local, parallel: boolean, nestOf: (body: X[]) => X[], runBody: X[], runs: Local[], lo64: Local[], hi64: Local[], store: X[]): X[] {
  const { e } = c;
  const m = e.m;
  const [grp, kk, cnt, acc] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const n = runs.length;
  const at = (o: number, half: number) => e.add(acc.get(), e.addc(e.mulc(kk.get(), 32 * n), 32 * o + 16 * half));
  const load = runs.flatMap((_, o) => [lo64[o]!.set(e.vload(at(o, 0))), hi64[o]!.set(e.vload(at(o, 1)))]);
  const G = groupOf(K, e.T);
  const first = e.mulc(grp.get(), G);
  const body = [
    // cnt = the group's outputs (the last group may hold fewer).
    cnt.set(m.select(m.i32.lt_u(e.addc(first, G), e.i32(K)), e.i32(G), e.sub(e.i32(K), e.copyExpr(first)))),
    e.for(kk, e.i32(0), cnt.get(), 1, runs.flatMap((_, o) => [e.vstore(at(o, 0), e.vzero()), e.vstore(at(o, 1), e.vzero())])),
    ...nestOf([
      e.for(kk, e.i32(0), cnt.get(), 1, [
        k.set(e.add(e.mulc(grp.get(), G), kk.get())),
        ...load,
        ...runBody,
        ...runs.flatMap((_, o) => [e.vstore(at(o, 0), lo64[o]!.get()), e.vstore(at(o, 1), hi64[o]!.get())]),
      ]),
    ]),
    e.for(kk, e.i32(0), cnt.get(), 1, [k.set(e.add(e.mulc(grp.get(), G), kk.get())), ...load.map((x) => e.copyExpr(x)), ...store]),
  ];
  const groups = Math.ceil(K / G);
  const init = [acc.set(c.threadScratch(32 * n * G, tid))];
  if (parallel) return [...init, ...sharedLoop(c, fn, grp, groups, body)];
  return onThread0(e, tid, [...init, e.forc(grp, 0, groups, 1, body)]);
}

/** Zeroes lanes n..3 of v (they hold f of zero-filled tails, which need not be 0). */
function maskLanes(c: KernelCtx, v: X, n: number): X {
  const mask = new Uint8Array(16);
  mask.fill(0xff, 0, 4 * n);
  return c.e.m.v128.and(v, c.e.m.v128.const(mask));
}

function reduceInnerKept(c: KernelCtx, fn: Fn, tid: Local, kept: Dim[], red: Dim[], spec: ReduceSpec, outs: readonly number[], termsAt: Terms, total: number): X[] {
  const { e } = c;
  const m = e.m;
  const nIn = spec.ins.length;
  const inner = kept[kept.length - 1]!;
  const outerKept = kept.slice(0, -1);
  const L = inner.n;
  const kIdx = outerKept.map(() => fn.i32());
  const rIdx = red.map(() => fn.i32());
  const col = fn.i32();
  const accv = fn.v128();
  const tmp = fn.v128();
  const vals = (n: number) =>
    spec.ins.map((x, j) => {
      const dimsAll = [...outerKept, ...red];
      const idxAll = [...kIdx, ...rIdx];
      let a = addrOf(c, x.addr, dimsAll, idxAll, j);
      if (inner.strides[j] === 0) return e.vsplatLoad(a);
      a = e.add(a, e.mulc(col.get(), 4));
      return e.vloadN(a, n);
    });
  // Column sums accumulate in f64 (two f64x2 per 4 columns): they are short and cheap, and a
  // bias gradient summed over the batch is often a small difference of large terms.
  const lo = outs.map(() => fn.v128());
  const hi = outs.map(() => fn.v128());
  const column = (n: number): X[] => {
    const { set, terms } = termsAt(vals(n));
    let nest: X[] = [...set];
    terms.forEach((x, k) => {
      nest.push(
        tmp.set(x),
        lo[k]!.set(m.f64x2.add(lo[k]!.get(), m.f64x2.promote_low_f32x4(tmp.get()))),
        hi[k]!.set(m.f64x2.add(hi[k]!.get(), m.f64x2.promote_low_f32x4(m.i8x16.shuffle(tmp.get(), tmp.get(), [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7])))),
      );
    });
    for (let k = red.length - 1; k >= 0; k--) nest = [e.forc(rIdx[k]!, 0, red[k]!.n, 1, nest)];
    const stores = outs.flatMap((o, k) => {
      const out = e.add(addrOf(c, o, outerKept, kIdx, nIn), e.mulc(col.get(), 4));
      const sum = m.i8x16.shuffle(m.f32x4.demote_f64x2_zero(lo[k]!.get()), m.f32x4.demote_f64x2_zero(hi[k]!.get()), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);
      const res = spec.post ? postVec(c, accv.get(), spec.post) : accv.get();
      return [accv.set(sum), tmp.set(res), e.vstoreN(out, tmp.get(), n)];
    });
    return [...[...lo, ...hi].map((l) => l.set(e.vzero())), ...nest, ...stores];
  };
  const L4 = L - (L % 4);
  const parallel = e.T > 1 && total >= PARALLEL_MIN;
  let body: X[];
  const splitOuter = parallel && outerKept.length > 0 && outerKept[0]!.n >= e.T;
  const splitCols = parallel && !splitOuter && L >= 4 * e.T;
  if (splitCols) {
    const s = span(e, fn, tid, L, 4);
    const end = fn.i32();
    body = [
      ...s.init,
      end.set(m.select(m.i32.lt_s(s.hi.get(), e.i32(L4)), s.hi.get(), e.i32(L4))),
      e.for(col, s.lo.get(), end.get(), 4, column(4)),
      ...(L % 4 ? [e.if(m.i32.eq(s.hi.get(), e.i32(L)), [col.set(e.i32(L4)), ...column(L % 4)])] : []),
    ];
  } else {
    body = [e.forc(col, 0, L4, 4, column(4)), ...(L % 4 ? [col.set(e.i32(L4)), ...column(L % 4)] : [])];
  }
  for (let k = outerKept.length - 1; k >= 0; k--) {
    if (k === 0 && splitOuter) {
      const s = span(e, fn, tid, outerKept[0]!.n);
      body = [...s.init, e.for(kIdx[0]!, s.lo.get(), s.hi.get(), 1, body)];
    } else {
      body = [e.forc(kIdx[k]!, 0, outerKept[k]!.n, 1, body)];
    }
  }
  return splitOuter || splitCols ? body : onThread0(e, tid, body);
}

/** Applies a scalar post-op to each lane. */
function postVec(c: KernelCtx, v: X, post: (s: X) => X): X {
  const m = c.e.m;
  // post is a scalar expression builder; apply it per lane (reductions' outputs are few).
  let out = v;
  for (let lane = 0; lane < 4; lane++) out = m.f32x4.replace_lane(out, lane, post(m.f32x4.extract_lane(c.e.copyExpr(v), lane)));
  return out;
}

