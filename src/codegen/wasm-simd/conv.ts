import { EVEN, ODD, type Emitter, type Fn, type Local, type X } from './emitter.ts';

/** One image of a convolution whose input is already padded: x [C, Hp, Wp], w [O, C, KH, KW], y [O, HO, WO]. */
export interface ConvImage {
  C: number;
  Hp: number;
  Wp: number;
  O: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  HO: number;
  WO: number;
  /** Address of w[0, 0, 0, 0]. */
  w: number | Local;
  bias?: number;
  /**
   * The rows [r0, r1) and columns [c0, c1) of x outside which it is known to be zero (a padding
   * border, the border of a transposed convolution's spread gradient): taps that would read only
   * zeros for a whole tile are skipped. Skipping them changes no sum (x + 0·w = x for finite w).
   */
  live?: { r0: number; r1: number; c0: number; c1: number };
  /**
   * Taps in groups of their own kernel size, each over its own run of input planes and weights
   * (the phase classes of a stride-2 convolution, src/codegen/wasm-simd/phase-split.ts); by
   * default one group: all C planes, KH × KW taps, w. Not with `live`.
   */
  groups?: readonly TapGroup[];
}

/** C input planes from byte `x` past the image's base, KH × KW taps, weights [O, C, KH, KW] at w. */
export interface TapGroup {
  x: number;
  w: number | Local;
  C: number;
  KH: number;
  KW: number;
}

/** The taps a tile runs: kh in [khLo, khLo + nkh), kw in [kwLo, kwLo + nkw). */
export interface TapRange {
  khLo: Local;
  nkh: Local;
  kwLo: Local;
  nkw: Local;
}

/**
 * Loads 4 lanes of a row read with a column stride: lane l is the f32 at ptr + off + 4·l·stride.
 * Stride 1 is one load; stride 2 is two loads and a shuffle of the even lanes; others gather.
 * `lanes` < 4 reads only the valid lanes (the rest are zero). A stride-2 full load reads one f32
 * past the last lane: callers keep a line of slack after every buffer.
 */
export function loadStrided(e: Emitter, ptr: X, off: number, stride: number, lanes = 4): X {
  const m = e.m;
  if (stride === 1) return e.vloadN(ptr, lanes, off);
  if (stride === 2 && lanes === 4) return m.i8x16.shuffle(e.vload(ptr, off), e.vload(e.copyExpr(ptr), off + 16), [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]);
  let v = m.v128.load32_zero(off, 4, ptr);
  for (let l = 1; l < lanes; l++) v = m.v128.load32_lane(off + 4 * l * stride, 4, l, e.copyExpr(ptr), v);
  return v;
}

/**
 * Runs `body` once per tap (c, kh, kw) of a convolution with `px` at the tap's input (relative to
 * a tile's base: + c·plane + (kh·Wp + kw)·4) and `pw` at its weight (+ ((c·KH + kh)·KW + kw)·4).
 *
 * One tap per loop iteration is deliberate. V8's optimizing compiler places a block's loads first
 * (they are ordered on the effect chain; the multiply-adds float down to their uses), so a tile
 * with all taps unrolled loads every input vector and weight up front and spills them to the stack
 * (measured: 338 stack moves in SimpleCNN's conv tile, 30% of peak). With one tap per block the
 * loads of an iteration fit in registers next to the accumulators.
 */
export function tapLoop(e: Emitter, fn: Fn, p: Pick<ConvImage, 'C' | 'Hp' | 'Wp' | 'KH' | 'KW'>, xBase: X, wBase: X, body: (px: Local, pw: Local) => X[], range?: TapRange): X[] {
  const [px, pw, c, kh, kw] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const row = 4 * p.Wp;
  const plane = 4 * p.Hp * p.Wp;
  const step = [px.set(e.addc(px.get(), 4)), pw.set(e.addc(pw.get(), 4))];
  if (!range) {
    return [
      px.set(xBase),
      pw.set(wBase),
      e.forc(c, 0, p.C, 1, [e.forc(kh, 0, p.KH, 1, [e.forc(kw, 0, p.KW, 1, [...body(px, pw), ...step]), px.set(e.addc(px.get(), row - 4 * p.KW))]), px.set(e.addc(px.get(), plane - p.KH * row))]),
    ];
  }
  // A sub-rectangle of taps: the pointers skip the taps left out at the end of each kernel row
  // and of each channel.
  const { khLo, nkh, kwLo, nkw } = range;
  const [rowX, rowW, chX, chW] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  return [
    rowX.set(e.sub(e.i32(row), e.mulc(nkw.get(), 4))),
    rowW.set(e.mulc(e.sub(e.i32(p.KW), nkw.get()), 4)),
    chX.set(e.sub(e.i32(plane), e.mulc(nkh.get(), row))),
    chW.set(e.mulc(e.sub(e.i32(p.KH), nkh.get()), 4 * p.KW)),
    px.set(e.add(xBase, e.add(e.mulc(khLo.get(), row), e.mulc(kwLo.get(), 4)))),
    pw.set(e.add(wBase, e.mulc(e.add(e.mulc(khLo.get(), p.KW), kwLo.get()), 4))),
    e.forc(c, 0, p.C, 1, [
      e.for(kh, e.i32(0), nkh.get(), 1, [e.for(kw, e.i32(0), nkw.get(), 1, [...body(px, pw), ...step]), px.set(e.add(px.get(), rowX.get())), pw.set(e.add(pw.get(), rowW.get()))]),
      px.set(e.add(px.get(), chX.get())),
      pw.set(e.add(pw.get(), chW.get())),
    ]),
  ];
}

/**
 * Sets `range` to the taps (kh, kw) that read some live input for output rows [oh, oh + rows)
 * and columns [ow, ow + lanes): kh from max(0, r0 - (oh + rows - 1)·sh) up to min(KH, r1 - oh·sh),
 * likewise for kw; an empty range when none does.
 */
function liveTaps(e: Emitter, p: ConvImage & { live: NonNullable<ConvImage['live']> }, range: TapRange, oh: Local, rows: number, ow: Local, lanes: number): X[] {
  const m = e.m;
  const max = (a: X, b: X) => m.select(m.i32.gt_s(a, b), e.copyExpr(a), e.copyExpr(b));
  const min = (a: X, b: X) => m.select(m.i32.lt_s(a, b), e.copyExpr(a), e.copyExpr(b));
  const lo = (start: number, at: Local, span: number, stride: number) => max(e.i32(0), e.sub(e.i32(start), e.mulc(e.addc(at.get(), span - 1), stride)));
  const hi = (end: number, at: Local, stride: number, k: number) => min(e.i32(k), e.sub(e.i32(end), e.mulc(at.get(), stride)));
  const { r0, r1, c0, c1 } = p.live;
  return [
    range.khLo.set(lo(r0, oh, rows, p.sh)),
    range.nkh.set(max(e.i32(0), e.sub(hi(r1, oh, p.sh, p.KH), range.khLo.get()))),
    range.kwLo.set(lo(c0, ow, lanes, p.sw)),
    range.nkw.set(max(e.i32(0), e.sub(hi(c1, ow, p.sw, p.KW), range.kwLo.get()))),
  ];
}

/**
 * The share of convImage's tap work that reads only the zeros outside `live`, by its tiling (R
 * rows × 4 columns). Skipping costs a little per tile (the range, a branch, and variable-bound
 * loops on border tiles): measured, a thin border (padding 1-2 around 14-28 rows, ~5% dead) runs
 * up to 8% slower, LeNet's transposed conv2 (38% dead) 1.5× faster.
 */
export function deadTapShare(p: ConvImage, R: number): number {
  const live = p.live;
  if (!live) return 0;
  const span = (lo: number, hi: number, at: number, n: number, stride: number, k: number) => Math.max(0, Math.min(k, hi - at * stride) - Math.max(0, lo - (at + n - 1) * stride));
  let all = 0;
  let used = 0;
  for (let oh = 0; oh < p.HO; oh += R) {
    const rows = Math.min(R, p.HO - oh);
    for (let ow = 0; ow < p.WO; ow += 4) {
      const kh = span(live.r0, live.r1, oh, rows, p.sh, p.KH);
      const kw = span(live.c0, live.c1, ow, Math.min(4, p.WO - ow), p.sw, p.KW);
      all += p.KH * p.KW;
      used += kh * kw;
    }
  }
  return 1 - used / all;
}

/**
 * The register tile of convImage: R output rows × OB output channels. 2 × 4 unless the channels
 * come in threes (LeNet's 6): there 2 × 4 leaves a 2-channel tile at half the multiply-adds per
 * load, and 3 × 3 measured 12-16% faster on LeNet's conv1 and conv2's input gradient (AMD EPYC,
 * 1 thread; 3 × 2, 6 × 1, 6 × 2 and 4 × 3 were slower, and 3 × 3 loses to 2 × 4 on 16 channels).
 */
export function convTile(p: Pick<ConvImage, 'O' | 'HO'>): { OB: number; R: number } {
  if (p.O % 4 !== 0 && p.O % 3 === 0 && p.HO >= 3) return { OB: 3, R: 3 };
  return { OB: Math.min(4, p.O), R: p.HO >= 2 ? 2 : 1 };
}

/**
 * Direct convolution of one image, vectorised along output columns. Register tile (convTile):
 * 2 output rows × 4 output channels = 8 accumulators; each tap loads 2 input vectors and splats 4
 * weights, so 8 multiply-adds cost 6 loads, and the 8 independent chains cover the multiply-add
 * latency (4 cycles, 2 per cycle). Taps run in a loop (see tapLoop). Edges: the last rows one at a time, a last block
 * of fewer channels, a last vector of fewer columns (its lanes are computed from whatever lies
 * past the row, and not stored).
 */
export function convImage(e: Emitter, fn: Fn, p: ConvImage, x: Local, out: Local): X[] {
  const { OB, R } = convTile(p);
  const [o0, oh, ow, po] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const acc = Array.from({ length: R * OB }, () => fn.v128());
  const xv = Array.from({ length: R }, () => fn.v128());
  const s = fn.v128();
  const groups = (p.groups ?? [{ x: 0, w: p.w, C: p.C, KH: p.KH, KW: p.KW }]).map((g) => ({ ...g, pwo: fn.i32(), wPerO: g.C * g.KH * g.KW }));
  const range: TapRange | undefined = !p.groups && deadTapShare(p, R) >= 0.15 ? { khLo: fn.i32(), nkh: fn.i32(), kwLo: fn.i32(), nkw: fn.i32() } : undefined;

  const tile = (ob: number, r: number, lanes: number): X[] => {
    const st: X[] = [];
    for (let rr = 0; rr < r; rr++)
      for (let j = 0; j < ob; j++) st.push(acc[rr * OB + j]!.set(p.bias === undefined ? e.vzero() : e.vsplatLoad(e.add(e.i32(p.bias), e.mulc(o0.get(), 4)), 4 * j)));
    const base = () => e.add(x.get(), e.add(e.mulc(oh.get(), 4 * p.sh * p.Wp), e.mulc(ow.get(), 4 * p.sw)));
    const tap = (wPerO: number) => (px: Local, pw: Local): X[] => {
      const t: X[] = [];
      for (let rr = 0; rr < r; rr++) t.push(xv[rr]!.set(loadStrided(e, px.get(), 4 * rr * p.sh * p.Wp, p.sw)));
      for (let j = 0; j < ob; j++) {
        t.push(s.set(e.vsplatLoad(pw.get(), 4 * j * wPerO)));
        for (let rr = 0; rr < r; rr++) t.push(acc[rr * OB + j]!.set(e.madd(xv[rr]!.get(), s.get(), acc[rr * OB + j]!.get())));
      }
      return t;
    };
    for (const g of groups) {
      const taps = { C: g.C, Hp: p.Hp, Wp: p.Wp, KH: g.KH, KW: g.KW };
      const at = g.x ? e.addc(base(), g.x) : base();
      if (range) {
        // Interior tiles keep the constant-bound loop: the variable one costs ~13% when it skips
        // nothing (measured on a 3×3, padding 1 conv).
        const full = e.m.i32.and(e.m.i32.eq(range.nkh.get(), e.i32(p.KH)), e.m.i32.eq(range.nkw.get(), e.i32(p.KW)));
        st.push(...liveTaps(e, { ...p, live: p.live! }, range, oh, r, ow, lanes), e.if(full, tapLoop(e, fn, taps, at, g.pwo.get(), tap(g.wPerO)), tapLoop(e, fn, taps, base(), g.pwo.get(), tap(g.wPerO), range)));
      } else {
        st.push(...tapLoop(e, fn, taps, at, g.pwo.get(), tap(g.wPerO)));
      }
    }
    st.push(po.set(e.add(out.get(), e.add(e.mulc(o0.get(), 4 * p.HO * p.WO), e.add(e.mulc(oh.get(), 4 * p.WO), e.mulc(ow.get(), 4))))));
    for (let rr = 0; rr < r; rr++) for (let j = 0; j < ob; j++) st.push(e.vstoreN(po.get(), acc[rr * OB + j]!.get(), lanes, 4 * (j * p.HO * p.WO + rr * p.WO)));
    return st;
  };

  const W4 = p.WO - (p.WO % 4);
  const cols = (ob: number, r: number): X[] => [e.forc(ow, 0, W4, 4, tile(ob, r, 4)), ...(p.WO % 4 ? [ow.set(e.i32(W4)), ...tile(ob, r, p.WO % 4)] : [])];
  const HR = p.HO - (p.HO % R);
  const weights = () => groups.map((g) => g.pwo.set(e.add(typeof g.w === 'number' ? e.i32(g.w) : g.w.get(), e.mulc(o0.get(), 4 * g.wPerO))));
  const rows = (ob: number): X[] => [...weights(), e.forc(oh, 0, HR, R, cols(ob, R)), ...(p.HO % R ? [e.forc(oh, HR, p.HO, 1, cols(ob, 1))] : [])];
  const OF = p.O - (p.O % OB);
  return [e.forc(o0, 0, OF, OB, rows(OB)), ...(p.O % OB ? [o0.set(e.i32(OF)), ...rows(p.O % OB)] : [])];
}

/** A conv block with a 2×2 stride-2 max pool: one image, x already padded. */
export interface ConvPoolImage extends ConvImage {
  /** Pooled rows and columns. */
  PH: number;
  PW: number;
  relu: boolean;
}

/**
 * The first maximum of 4 window candidates q[0..3] (row-major: (0,0) (0,1) (1,0) (1,1)) by the
 * reference's rule (move to a strictly greater value, or to a NaN): its value in `best`, its
 * index 0-3 in `sel` (i32 lanes).
 */
export function windowArgmax(e: Emitter, q: readonly Local[], best: Local, sel: Local, take: Local): X[] {
  const m = e.m;
  const st: X[] = [best.set(q[0]!.get()), sel.set(e.vzero())];
  for (let j = 1; j < 4; j++) {
    st.push(take.set(m.v128.or(m.f32x4.gt(q[j]!.get(), best.get()), m.f32x4.ne(q[j]!.get(), q[j]!.get()))));
    st.push(best.set(m.v128.bitselect(q[j]!.get(), best.get(), take.get())), sel.set(m.v128.bitselect(m.i32x4.splat(e.i32(j)), sel.get(), take.get())));
  }
  return st;
}

/** i32x4 [0, 2, 4, 6]: the first conv column of each of 4 pooled columns, relative to the first. */
const EVEN_COLS = new Uint8Array(new Int32Array([0, 2, 4, 6]).buffer);

/**
 * conv → (relu) → 2×2/2 max pool of one image with the convolution in registers: a tile is 2
 * conv rows × 8 conv columns (two vectors) × 2 output channels = 8 accumulators, exactly the
 * 4 pooled outputs of each channel it feeds. Each tap (one per loop iteration, see tapLoop)
 * loads 4 input vectors and splats 2 weights for 8 multiply-adds. The pool is two vertical
 * maxes, a deinterleave of even and odd columns and one more max; ReLU after the max (they
 * commute, NaN included). Only y is stored: the conv output never reaches memory.
 */
export function convPoolImage(e: Emitter, fn: Fn, p: ConvPoolImage, x: Local, out: Local, argmax?: Local): X[] {
  const m = e.m;
  const q = argmax ? Array.from({ length: 4 }, () => fn.v128()) : [];
  const [best, sel, take] = argmax ? [fn.v128(), fn.v128(), fn.v128()] : [];
  const OB = Math.min(2, p.O);
  const wPerO = p.C * p.KH * p.KW;
  const [o0, ph, pw, pwo, po] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const acc = Array.from({ length: 4 * OB }, () => fn.v128()); // [r][v][j] at (r·2 + v)·OB + j
  const xv = Array.from({ length: 4 }, () => fn.v128());
  const s = fn.v128();
  const m0 = fn.v128();
  const m1 = fn.v128();
  const wBase = typeof p.w === 'number' ? e.i32(p.w) : p.w.get();
  const A = (r: number, v: number, j: number) => acc[(r * 2 + v) * OB + j]!;

  const tile = (ob: number, lanes: number): X[] => {
    const st: X[] = [];
    for (let r = 0; r < 2; r++)
      for (let v = 0; v < 2; v++)
        for (let j = 0; j < ob; j++) st.push(A(r, v, j).set(p.bias === undefined ? e.vzero() : e.vsplatLoad(e.add(e.i32(p.bias), e.mulc(o0.get(), 4)), 4 * j)));
    // The tile's input: conv row 2·ph·sh, conv column 2·pw·sw.
    const base = e.add(x.get(), e.add(e.mulc(ph.get(), 8 * p.sh * p.Wp), e.mulc(pw.get(), 8 * p.sw)));
    st.push(
      ...tapLoop(e, fn, p, base, pwo.get(), (px, pwt) => {
        const t: X[] = [];
        for (let r = 0; r < 2; r++) for (let v = 0; v < 2; v++) t.push(xv[r * 2 + v]!.set(loadStrided(e, px.get(), 4 * (r * p.sh * p.Wp + 4 * v * p.sw), p.sw)));
        for (let j = 0; j < ob; j++) {
          t.push(s.set(e.vsplatLoad(pwt.get(), 4 * j * wPerO)));
          for (let r = 0; r < 2; r++) for (let v = 0; v < 2; v++) t.push(A(r, v, j).set(e.madd(xv[r * 2 + v]!.get(), s.get(), A(r, v, j).get())));
        }
        return t;
      }),
    );
    st.push(po.set(e.add(out.get(), e.add(e.mulc(o0.get(), 4 * p.PH * p.PW), e.add(e.mulc(ph.get(), 4 * p.PW), e.mulc(pw.get(), 4))))));
    for (let j = 0; j < ob; j++) {
      if (!argmax) {
        st.push(m0.set(e.vmax(A(0, 0, j).get(), A(1, 0, j).get())), m1.set(e.vmax(A(0, 1, j).get(), A(1, 1, j).get())));
        let y = e.vmax(m.i8x16.shuffle(m0.get(), m1.get(), EVEN), m.i8x16.shuffle(m0.get(), m1.get(), ODD));
        if (p.relu) y = m.f32x4.pmax(y, e.vzero());
        st.push(s.set(y), e.vstoreN(po.get(), s.get(), lanes, 4 * j * p.PH * p.PW));
        continue;
      }
      // With the argmax: the window's first maximum of the activation and its position
      // ih·WO + iw in the conv output's plane, as f32.
      const act = (r: number, v: number) => (p.relu ? m.f32x4.pmax(A(r, v, j).get(), e.vzero()) : A(r, v, j).get());
      for (let r = 0; r < 2; r++) {
        st.push(m0.set(act(r, 0)), m1.set(act(r, 1)));
        st.push(q[2 * r]!.set(m.i8x16.shuffle(m0.get(), m1.get(), EVEN)), q[2 * r + 1]!.set(m.i8x16.shuffle(m0.get(), m1.get(), ODD)));
      }
      st.push(...windowArgmax(e, q, best!, sel!, take!), e.vstoreN(po.get(), best!.get(), lanes, 4 * j * p.PH * p.PW));
      const base = m.i32x4.add(m.i32x4.splat(e.add(e.mulc(ph.get(), 2 * p.WO), e.mulc(pw.get(), 2))), m.v128.const(EVEN_COLS));
      const pos = m.i32x4.add(m.i32x4.add(base, m.i32x4.mul(m.i32x4.shr_u(sel!.get(), e.i32(1)), m.i32x4.splat(e.i32(p.WO)))), m.v128.and(sel!.get(), m.i32x4.splat(e.i32(1))));
      st.push(s.set(m.f32x4.convert_i32x4_s(pos)), e.vstoreN(e.add(argmax.get(), e.sub(po.get(), out.get())), s.get(), lanes, 4 * j * p.PH * p.PW));
    }
    return st;
  };
  const P4 = p.PW - (p.PW % 4);
  const cols = (ob: number): X[] => [e.forc(pw, 0, P4, 4, tile(ob, 4)), ...(p.PW % 4 ? [pw.set(e.i32(P4)), ...tile(ob, p.PW % 4)] : [])];
  const rows = (ob: number): X[] => [pwo.set(e.add(e.copyExpr(wBase), e.mulc(o0.get(), 4 * wPerO))), e.forc(ph, 0, p.PH, 1, cols(ob))];
  const OF = p.O - (p.O % OB);
  return [e.forc(o0, 0, OF, OB, rows(OB)), ...(p.O % OB ? [o0.set(e.i32(OF)), ...rows(p.O % OB)] : [])];
}

/** The backward of a conv → relu → 2×2/2 max pool block for one output channel, x padded. */
export interface ConvPoolGrad extends ConvPoolImage {
  /** Address of gy [N, O, PH, PW]. */
  gy: number;
  /** The forward's pooled output and argmax [N, O, PH, PW] when it stored them; else the tiles are recomputed. */
  saved?: { y: number; argmax: number };
}

/**
 * dw and db of output channels o0 .. o0+ob-1 (ob = 1 or 2) over all images, for a conv → relu →
 * 2×2/2 max pool block whose conv output was not kept. For each block of 4 pooled cells:
 * - the 2×8 conv tile of both channels is recomputed (4·ob accumulators; a loop over taps
 *   loading 4 input vectors and splatting ob weights per iteration, see tapLoop);
 * - per channel: ReLU, the four window candidates deinterleaved, the first maximum (strictly
 *   greater, or NaN: the reference's rule) gives each cell's position and value; gy is masked
 *   by that value > 0 (the ReLU's mask there);
 * - per cell (lane): only its argmax position has a gradient, so dw[c, kh, 0..KW-1] += g·x[c,
 *   ih+kh, iw..iw+3] for each (c, kh): one load and one multiply-add per kernel row, the KW taps
 *   of a row in the lanes of one accumulator (KW <= 4; the fourth lane collects junk and is never
 *   read). That is 1/4 of a dense correlation's work, since 3 of every 4 conv outputs get no
 *   gradient from the pool.
 * Row accumulators hold one image's sums and are added into totals per image (rounding grows with
 * PH·PW + N terms, not N·PH·PW); they are registers while ob·C·KH <= 8, else scratch.
 */
export function convPoolGradChannels(
  e: Emitter,
  fn: Fn,
  p: ConvPoolGrad,
  N: number,
  image: (n: Local) => X,
  o0: Local,
  ob: number,
  sums: X,
  dw: X,
  db: X | undefined,
): X[] {
  const m = e.m;
  const T = p.C * p.KH * p.KW;
  const rowsPer = p.C * p.KH;
  const R = ob * rowsPer;
  const inRegs = R <= 8;
  const [n, ph, pw, img, pg, wo, sp, tile, at, sl] = Array.from({ length: 10 }, () => fn.i32());
  const cacc = Array.from({ length: 4 * ob }, () => fn.v128());
  const q = Array.from({ length: 4 }, () => fn.v128());
  const [best, sel, take, g, gv, s, t] = Array.from({ length: 7 }, () => fn.v128());
  const bacc = Array.from({ length: ob }, () => fn.v128());
  const btot = Array.from({ length: ob }, () => fn.v128());
  const regs = inRegs ? Array.from({ length: R }, () => fn.v128()) : [];
  // sums (scratch): R vectors of totals, then (when not in registers) R vectors of this image's rows.
  const acc = (r: number) =>
    inRegs ? { get: () => regs[r]!.get(), set: (v: X) => regs[r]!.set(v) } : { get: () => e.vload(sp.get(), 16 * (R + r)), set: (v: X) => e.vstore(sp.get(), v, 16 * (R + r)) };
  const plane = 4 * p.Hp * p.Wp;
  const rowOff = (r: number, v: number) => 4 * (r * p.sh * p.Wp + 4 * v * p.sw);
  const pgStride = 4 * p.PH * p.PW;

  const block = (lanes: number): X[] => {
    const st: X[] = [tile.set(e.add(img.get(), e.add(e.mulc(ph.get(), 8 * p.sh * p.Wp), e.mulc(pw.get(), 8 * p.sw))))];
    if (!p.saved) for (let j = 0; j < ob; j++)
      for (let i = 0; i < 4; i++) st.push(cacc[4 * j + i]!.set(p.bias === undefined ? e.vzero() : e.vsplatLoad(e.add(e.i32(p.bias), e.mulc(o0.get(), 4)), 4 * j)));
    if (!p.saved) st.push(
      ...tapLoop(e, fn, p, tile.get(), wo.get(), (px, pwt) => {
        const u: X[] = [];
        const xs = [0, 1, 2, 3].map((i) => loadStrided(e, px.get(), rowOff(i >> 1, i & 1), p.sw));
        // ob = 2: load each input vector once into q (free here), use it for both channels.
        if (ob === 1) {
          u.push(s.set(e.vsplatLoad(pwt.get())));
          for (let i = 0; i < 4; i++) u.push(cacc[i]!.set(e.madd(xs[i]!, s.get(), cacc[i]!.get())));
        } else {
          for (let i = 0; i < 4; i++) u.push(q[i]!.set(xs[i]!));
          for (let j = 0; j < ob; j++) {
            u.push(s.set(e.vsplatLoad(pwt.get(), 4 * j * T)));
            for (let i = 0; i < 4; i++) u.push(cacc[4 * j + i]!.set(e.madd(q[i]!.get(), s.get(), cacc[4 * j + i]!.get())));
          }
        }
        return u;
      }),
    );
    for (let j = 0; j < ob; j++) {
      if (p.saved) {
        // The stored argmax as a window index: d = position - the window's first, in {0, 1, WO, WO+1}.
        const base = m.i32x4.add(m.i32x4.splat(e.add(e.mulc(ph.get(), 2 * p.WO), e.mulc(pw.get(), 2))), m.v128.const(EVEN_COLS));
        st.push(take.set(m.i32x4.sub(m.i32x4.trunc_sat_f32x4_s(e.vloadN(e.add(e.i32(p.saved.argmax), e.sub(pg.get(), e.i32(p.gy))), lanes, j * pgStride)), base)));
        st.push(sel.set(m.i32x4.ge_s(take.get(), m.i32x4.splat(e.i32(p.WO)))));
        st.push(sel.set(m.v128.or(m.v128.and(sel.get(), m.i32x4.splat(e.i32(2))), m.i32x4.sub(take.get(), m.v128.and(sel.get(), m.i32x4.splat(e.i32(p.WO)))))));
        st.push(best.set(e.vloadN(e.add(e.i32(p.saved.y), e.sub(pg.get(), e.i32(p.gy))), lanes, j * pgStride)));
      } else {
        const C = (i: number) => cacc[4 * j + i]!;
        const act = (i: number) => (p.relu ? m.f32x4.pmax(C(i).get(), e.vzero()) : C(i).get());
        // Window candidates in row-major order: (0,0) (0,1) (1,0) (1,1).
        for (let r = 0; r < 2; r++) {
          st.push(C(r * 2).set(act(r * 2)), C(r * 2 + 1).set(act(r * 2 + 1)));
          st.push(q[2 * r]!.set(m.i8x16.shuffle(C(r * 2).get(), C(r * 2 + 1).get(), EVEN)), q[2 * r + 1]!.set(m.i8x16.shuffle(C(r * 2).get(), C(r * 2 + 1).get(), ODD)));
        }
        st.push(...windowArgmax(e, q, best, sel, take));
      }
      st.push(g.set(e.vloadN(pg.get(), lanes, j * pgStride)));
      if (p.relu) st.push(g.set(m.v128.and(g.get(), m.f32x4.gt(best.get(), e.vzero()))));
      st.push(bacc[j]!.set(e.vadd(bacc[j]!.get(), g.get())));
      for (let l = 0; l < lanes; l++) {
        // The cell's argmax: conv row sel>>1, conv column 2l + (sel&1) of the tile.
        st.push(
          sl.set(m.i32x4.extract_lane(sel.get(), l)),
          at.set(e.add(tile.get(), e.add(e.mulc(m.i32.shr_u(sl.get(), e.i32(1)), 4 * p.sh * p.Wp), e.mulc(e.addc(m.i32.and(sl.get(), e.i32(1)), 2 * l), 4 * p.sw)))),
          gv.set(m.i8x16.shuffle(g.get(), g.get(), [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3, 4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3, 4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3, 4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])),
        );
        for (let c = 0; c < p.C; c++)
          for (let kh = 0; kh < p.KH; kh++) {
            const a = acc(j * rowsPer + c * p.KH + kh);
            st.push(a.set(e.madd(gv.get(), e.vload(at.get(), c * plane + 4 * kh * p.Wp), a.get())));
          }
      }
    }
    st.push(pg.set(e.addc(pg.get(), 4 * lanes)));
    return st;
  };
  const P4 = p.PW - (p.PW % 4);
  const wBase = typeof p.w === 'number' ? e.i32(p.w) : p.w.get();
  const zeroRows = inRegs ? regs.map((r) => r.set(e.vzero())) : [m.memory.fill(e.addc(sp.get(), 16 * R), e.i32(0), e.i32(16 * R))];
  const flush = Array.from({ length: R }, (_, r) => e.vstore(sp.get(), e.vadd(e.vload(sp.get(), 16 * r), acc(r).get()), 16 * r));
  const store: X[] = [];
  for (let j = 0; j < ob; j++)
    for (let c = 0; c < p.C; c++)
      for (let kh = 0; kh < p.KH; kh++) {
        const r = j * rowsPer + c * p.KH + kh;
        store.push(t.set(e.vload(sp.get(), 16 * r)));
        for (let kw = 0; kw < p.KW; kw++) store.push(e.storef(e.add(e.copyExpr(dw), e.mulc(o0.get(), 4 * T)), m.f32x4.extract_lane(t.get(), kw), 4 * (j * T + (c * p.KH + kh) * p.KW + kw)));
      }
  return [
    wo.set(e.add(wBase, e.mulc(o0.get(), 4 * T))),
    sp.set(sums),
    m.memory.fill(sp.get(), e.i32(0), e.i32(16 * R)),
    ...btot.map((b) => b.set(e.vzero())),
    e.forc(n, 0, N, 1, [
      img.set(image(n)),
      pg.set(e.add(e.i32(p.gy), e.add(e.mulc(n.get(), 4 * p.O * p.PH * p.PW), e.mulc(o0.get(), pgStride)))),
      ...zeroRows,
      ...bacc.map((b) => b.set(e.vzero())),
      e.forc(ph, 0, p.PH, 1, [e.forc(pw, 0, P4, 4, block(4)), ...(p.PW % 4 ? [pw.set(e.i32(P4)), ...block(p.PW % 4)] : [])]),
      ...flush,
      ...bacc.map((b, j) => btot[j]!.set(e.vadd(btot[j]!.get(), b.get()))),
    ]),
    ...store,
    ...(db !== undefined ? btot.map((b, j) => e.storef(e.add(e.copyExpr(db), e.mulc(o0.get(), 4)), e.hsum(b.get(), t), 4 * j)) : []),
  ];
}

/** Copies image n of x [N, C, H, W] into `scratch` with a zero border of (ph, pw). */
export function padImage(e: Emitter, fn: Fn, scratch: Local, x: number, n: Local, C: number, H: number, W: number, ph: number, pw: number): X[] {
  const m = e.m;
  const Hp = H + 2 * ph;
  const Wp = W + 2 * pw;
  const r = fn.i32();
  return [
    m.memory.fill(scratch.get(), e.i32(0), e.i32(4 * C * Hp * Wp)),
    // Row r = c·H + h of the image.
    e.forc(r, 0, C * H, 1, [
      m.memory.copy(
        e.add(scratch.get(), e.addc(e.add(e.mulc(m.i32.div_u(r.get(), e.i32(H)), 4 * Hp * Wp), e.mulc(m.i32.rem_u(r.get(), e.i32(H)), 4 * Wp)), 4 * (ph * Wp + pw))),
        e.add(e.i32(x), e.add(e.mulc(n.get(), 4 * C * H * W), e.mulc(r.get(), 4 * W))),
        e.i32(4 * W),
      ),
    ]),
  ];
}
