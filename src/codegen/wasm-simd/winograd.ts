import type { ConvImage } from './conv.ts';
import { EVEN, ODD, ZIP_HI, ZIP_LO, type Emitter, type Fn, type Local, type X } from './emitter.ts';

/**
 * Winograd F(2×2, 3×3) convolution of one padded image (Lavin & Gray, 2015): each 2×2 block of
 * outputs ("tile") is A^T [(G w G^T) ⊙ (B^T d B)] A with d the tile's 4×4 input patch, so a tile
 * costs 16 multiply-adds per channel pair instead of 36, and the transforms are additions shared
 * across the other side's channels. Vectors run over 4 horizontally adjacent tiles (8 output
 * columns); the 16 element-wise products are 16 small GEMMs over the input channels, run with a
 * register tile of 4 output channels × 2 tile vectors (8 accumulators; per input channel 2 vector
 * loads and 4 weight splats, the same load ratio as convImage).
 *
 * The sums are those of a direct convolution reassociated through the transforms (entries 0,
 * ±1, ±½): results differ from convImage's in the last bits, not across thread counts (each
 * image is one thread's, in a fixed order). The GEMMs, the weight transform and the strip loop
 * here are F(4×4, 3×3)'s too (winograd-f4.ts; which one runs: winograd-plan.ts).
 */

/**
 * Fewest channels on either side for Winograd: the transforms are shared across the other side's
 * channels. At 16 (ResNet's stage 1) the kernels run 1.3-1.5× faster than direct (measured); fewer
 * than 8 is left to the direct kernel untried.
 */
const MIN_CHANNELS = 8;

/** Whether winogradImage computes this convolution: 3×3, stride 1, a padded input of HO + 2 rows and WO + 2 columns, WO a multiple of 8 and HO of 2, output channels in fours. */
export function winogradFits(p: Pick<ConvImage, 'C' | 'O' | 'KH' | 'KW' | 'sh' | 'sw' | 'Hp' | 'Wp' | 'HO' | 'WO'>): boolean {
  return p.KH === 3 && p.KW === 3 && p.sh === 1 && p.sw === 1 && p.Hp === p.HO + 2 && p.Wp === p.WO + 2 && p.HO % 2 === 0 && p.WO % 8 === 0 && p.O % 4 === 0 && p.C >= MIN_CHANNELS && p.O >= MIN_CHANNELS;
}

/** Bytes of the transformed weights U [16, O, C]. */
export function winogradWeightBytes(O: number, C: number): number {
  return 4 * 16 * O * C;
}

/** Locals winogradInput works in: four vectors, two more, two counters, a pointer, and 16 vectors of scratch at tb. */
export interface InputTemps {
  a: readonly [Local, Local, Local, Local];
  d1: Local;
  d2: Local;
  i: Local;
  j: Local;
  pt: Local;
  tb: Local;
}

/**
 * V = B^T d B for 4 horizontally adjacent tiles (lanes): d is the 4×4 patch at `src` (rows 4·Wp
 * bytes apart, tile l at column 2l), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]; V[ξ] is
 * stored at dst + ξ·xiStride. The rows of d first (each row's 4 columns deinterleaved from 4
 * loads: columns 0-7 and 2-9 of the 4 tiles) into tb, then the columns of that.
 */
export function winogradInput(e: Emitter, t: InputTemps, src: X, Wp: number, dst: X, xiStride: number): X[] {
  const m = e.m;
  const [a0, a1, a2, a3] = t.a;
  const { d1, d2, i, j, pt, tb } = t;
  const row = (off: number, v: X) => e.vstore(e.add(tb.get(), e.mulc(i.get(), 64)), v, off);
  const col = (r: number) => e.vload(e.add(tb.get(), e.mulc(j.get(), 16)), 64 * r);
  return [
    pt.set(src),
    e.forc(i, 0, 4, 1, [
      a0.set(e.vload(pt.get(), 0)),
      a1.set(e.vload(pt.get(), 16)),
      a2.set(e.vload(pt.get(), 8)),
      a3.set(e.vload(pt.get(), 24)),
      d1.set(m.i8x16.shuffle(a0.get(), a1.get(), ODD)),
      d2.set(m.i8x16.shuffle(a2.get(), a3.get(), EVEN)),
      row(0, e.vsub(m.i8x16.shuffle(a0.get(), a1.get(), EVEN), d2.get())),
      row(16, e.vadd(d1.get(), d2.get())),
      row(32, e.vsub(d2.get(), d1.get())),
      row(48, e.vsub(d1.get(), m.i8x16.shuffle(a2.get(), a3.get(), ODD))),
      pt.set(e.addc(pt.get(), 4 * Wp)),
    ]),
    // Column j of the row transforms → V[4·r + j] for r = 0..3.
    pt.set(dst),
    e.forc(j, 0, 4, 1, [
      a0.set(col(0)),
      a1.set(col(1)),
      a2.set(col(2)),
      a3.set(col(3)),
      e.vstore(pt.get(), e.vsub(a0.get(), a2.get()), 0),
      e.vstore(pt.get(), e.vadd(a1.get(), a2.get()), 4 * xiStride),
      e.vstore(pt.get(), e.vsub(a2.get(), a1.get()), 8 * xiStride),
      e.vstore(pt.get(), e.vsub(a1.get(), a3.get()), 12 * xiStride),
      pt.set(e.addc(pt.get(), xiStride)),
    ]),
  ];
}

/** Tile vectors per strip (F(4×4)'s: blocks of 4 tiles): the GEMMs' register tile spans 2. */
export const TV = 2;
/** Output channels per GEMM register tile. */
export const OB = 4;

/** Bytes between V[ξ] and V[ξ + 1]: C·TV vectors and a line, since power-of-two strides would put all ξ in one cache set. */
export function vStrideOf(C: number): number {
  return 16 * C * TV + 64;
}

/** Bytes of winogradImage's working buffers: V [16, C, TV] vectors, M [OB, 16, TV] vectors and 16 vectors of row sums. */
export function winogradScratchBytes(C: number): number {
  return 16 * vStrideOf(C) + 16 * (OB * 16 * TV + 16);
}

/** A Winograd weight transform G: its n rows, each a combination of a kernel column (v(0), v(1), v(2)). */
export interface WeightTransform {
  n: number;
  rows(v: (k: number) => X): X[];
}

/**
 * U[ξ, o, c] = (G w[o, c] G^T)[ξ] for every output channel o and input channel c, ξ = n·row +
 * column; `at(o, c, kh, kw)` is the address of the weight that tap (kh, kw) multiplies (a
 * transposed convolution passes its flip).
 */
export function transformWeights(e: Emitter, fn: Fn, G: WeightTransform, u: X, O: number, C: number, at: (o: X, c: X, kh: number, kw: number) => X): X[] {
  const { n } = G;
  const [o, c, dst] = [fn.i32(), fn.i32(), fn.i32()];
  const g = Array.from({ length: 9 }, () => fn.f32());
  const h = Array.from({ length: 3 * n }, () => fn.f32());
  const body: X[] = [];
  for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) body.push(g[kh * 3 + kw]!.set(e.loadf(at(o.get(), c.get(), kh, kw))));
  // h[a, kw] = (G·w)[a, kw]: G over the kernel's rows, for each column.
  for (let kw = 0; kw < 3; kw++) G.rows((r) => g[r * 3 + kw]!.get()).forEach((v, a) => body.push(h[a * 3 + kw]!.set(v)));
  body.push(dst.set(e.add(e.copyExpr(u), e.mulc(e.add(e.mulc(o.get(), C), c.get()), 4))));
  // U[a, b] = G over h's columns, for each row a.
  for (let a = 0; a < n; a++) G.rows((kw) => h[a * 3 + kw]!.get()).forEach((v, b) => body.push(e.storef(dst.get(), v, 4 * (a * n + b) * O * C)));
  return [e.forc(o, 0, O, 1, [e.forc(c, 0, C, 1, body)])];
}

/** F(2×2, 3×3)'s G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. */
function g2(e: Emitter): WeightTransform {
  const m = e.m;
  const half = (v: X) => m.f32.mul(v, e.f32(0.5));
  return { n: 4, rows: (v) => [v(0), half(m.f32.add(m.f32.add(v(0), v(1)), v(2))), half(m.f32.add(m.f32.sub(v(0), v(1)), v(2))), v(2)] };
}

/** U [16, O, C] of F(2×2, 3×3) (see transformWeights). */
export function winogradWeights(e: Emitter, fn: Fn, u: X, O: number, C: number, at: (o: X, c: X, kh: number, kw: number) => X): X[] {
  return transformWeights(e, fn, g2(e), u, O, C, at);
}

/** Where a Winograd strip's GEMMs read and write: V [xis, C, TV] vectors at vb (vStride bytes between ξ), U [xis, O, C] at u, M [OB, xis, TV] vectors at mb; output channels o0 .. o0 + OB - 1. */
export interface StripGemm {
  xis: number;
  C: number;
  O: number;
  u: X;
  vb: Local;
  mb: Local;
  o0: Local;
}

/**
 * M[jo, ξ, t] = Σ_c U[ξ, o0 + jo, c] · V[ξ, c, t] for the strip's tv tile vectors: the element-wise
 * products of a Winograd strip as xis small GEMMs over the input channels, with a register tile of
 * OB output channels × tv vectors (per input channel tv vector loads and OB weight splats).
 */
export function winogradGemm(e: Emitter, fn: Fn, g: StripGemm, tv: number): X[] {
  const { xis, C, O } = g;
  const [xi, cc, pv, pu, pt] = Array.from({ length: 5 }, () => fn.i32());
  const acc = Array.from({ length: OB * TV }, () => fn.v128());
  const vv = Array.from({ length: TV }, () => fn.v128());
  const sp = fn.v128();
  const vStride = vStrideOf(C);
  return [
    e.forc(xi, 0, xis, 1, [
      ...Array.from({ length: OB }, (_, jo) => acc.slice(jo * TV, jo * TV + tv).map((a) => a.set(e.vzero()))).flat(),
      pv.set(e.add(g.vb.get(), e.mulc(xi.get(), vStride))),
      pu.set(e.add(e.copyExpr(g.u), e.add(e.mulc(xi.get(), 4 * O * C), e.mulc(g.o0.get(), 4 * C)))),
      e.forc(cc, 0, C, 1, [
        ...vv.slice(0, tv).map((v, t) => v.set(e.vload(pv.get(), 16 * t))),
        ...Array.from({ length: OB }, (_, jo) => [
          sp.set(e.vsplatLoad(pu.get(), 4 * jo * C)),
          ...vv.slice(0, tv).map((v, t) => acc[jo * TV + t]!.set(e.madd(v.get(), sp.get(), acc[jo * TV + t]!.get()))),
        ]).flat(),
        pv.set(e.addc(pv.get(), 16 * TV)),
        pu.set(e.addc(pu.get(), 4)),
      ]),
      pt.set(e.add(g.mb.get(), e.mulc(xi.get(), 16 * TV))),
      ...Array.from({ length: OB }, (_, jo) => acc.slice(jo * TV, jo * TV + tv).map((a, t) => e.vstore(pt.get(), a.get(), 16 * (jo * xis * TV + t)))).flat(),
    ]),
  ];
}

/** A Winograd image's strips: `count` tile vectors in strips of TV, and the transforms of tile vector t of the strip at sv. */
export interface Strips extends Omit<StripGemm, 'vb' | 'mb'> {
  count: number;
  /** The thread's scratch: V, then M, then the transforms' own at tb. */
  s: X;
  vb: Local;
  mb: Local;
  tb: Local;
  sv: Local;
  cc: Local;
  j: Local;
  /** Where tile vector t's input and output are. */
  locate(t: number): X[];
  /** Tile vector t of channel cc into V. */
  input(t: number): X[];
  /** Output channel o0 + j of tile vector t from M. */
  output(t: number): X[];
}

/**
 * The loop of a Winograd image: per strip of TV tile vectors (a last one of count mod TV), the
 * input transform of every channel into V; then per OB output channels the GEMMs into M and the
 * output transform.
 */
export function winogradStrips(e: Emitter, fn: Fn, d: Strips): X[] {
  const { xis, C, O, count, sv, cc, j } = d;
  const strip = (tv: number): X[] => [
    ...Array.from({ length: tv }, (_, t) => d.locate(t)).flat(),
    e.forc(cc, 0, C, 1, Array.from({ length: tv }, (_, t) => d.input(t)).flat()),
    e.forc(d.o0, 0, O, OB, [...winogradGemm(e, fn, d, tv), e.forc(j, 0, OB, 1, Array.from({ length: tv }, (_, t) => d.output(t)).flat())]),
  ];
  const full = count - (count % TV);
  return [
    d.vb.set(d.s),
    d.mb.set(e.addc(d.vb.get(), xis * vStrideOf(C))),
    d.tb.set(e.addc(d.mb.get(), 16 * OB * xis * TV)),
    e.forc(sv, 0, full, TV, strip(TV)),
    ...(count % TV ? [sv.set(e.i32(full)), ...strip(count % TV)] : []),
  ];
}

/**
 * out[o, ·, ·] = conv3×3(x, w)[o] (+ bias) for one image: x [C, HO+2, WO+2] padded, out
 * [O, HO, WO], U from winogradWeights, `s` winogradScratchBytes(C) of this thread's scratch.
 * Strips of TV tile vectors (row-major over the image's tile vectors) go through: the input
 * transform of every channel into V; then per block of 4 output channels the 16 GEMMs into M and
 * the output transform into out. Loops keep each basic block's loads few (see tapLoop in conv.ts).
 */
export function winogradImage(e: Emitter, fn: Fn, p: ConvImage, u: X, x: Local, out: Local, s: X): X[] {
  const m = e.m;
  const { C, O, HO, WO, Wp } = p;
  const TVr = WO / 8;
  const NT = (HO / 2) * TVr;
  const plane = 4 * p.Hp * Wp;
  const [vb, mb, tb, sv, cc, i, j, o0, pt, ub] = Array.from({ length: 10 }, () => fn.i32());
  const inB = Array.from({ length: TV }, () => fn.i32());
  const outB = Array.from({ length: TV }, () => fn.i32());
  const [a0, a1, a2, a3, d1, d2] = Array.from({ length: 6 }, () => fn.v128());
  const vStride = vStrideOf(C);

  // Tile vector tv at tile row ⌊tv / TVr⌋, tiles 4·(tv mod TVr) .. +3 of that row.
  const locate = (t: number): X[] => {
    const tv = e.addc(sv.get(), t);
    const ty = m.i32.div_u(tv, e.i32(TVr));
    const tx = m.i32.rem_u(e.copyExpr(tv), e.i32(TVr));
    return [
      inB[t]!.set(e.add(x.get(), e.add(e.mulc(ty, 8 * Wp), e.mulc(tx, 32)))),
      outB[t]!.set(e.add(out.get(), e.add(e.mulc(e.copyExpr(ty), 8 * WO), e.mulc(e.copyExpr(tx), 32)))),
    ];
  };

  const tmp = { a: [a0, a1, a2, a3] as const, d1, d2, i, j, pt, tb };
  const inputTransform = (t: number): X[] => winogradInput(e, tmp, e.add(inB[t]!.get(), e.mulc(cc.get(), plane)), Wp, e.add(vb.get(), e.addc(e.mulc(cc.get(), 16 * TV), 16 * t)), vStride);

  // A^T M A for output channel o0 + j, tile vector t, A^T = [1 1 1 0; 0 1 -1 -1]: rows of M into
  // tb (2 sums per row), then the two output rows, each interleaved back to 8 columns.
  const outputTransform = (t: number): X[] => {
    const bias = p.bias === undefined ? undefined : e.vsplatLoad(e.add(e.i32(p.bias), e.mulc(e.add(o0.get(), j.get()), 4)));
    const y0 = e.vadd(e.vadd(a0.get(), a1.get()), a2.get());
    const y1 = e.vsub(e.vsub(a1.get(), a2.get()), a3.get());
    return [
      pt.set(e.add(mb.get(), e.addc(e.mulc(j.get(), 16 * 16 * TV), 16 * t))),
      e.forc(i, 0, 4, 1, [
        a0.set(e.vload(pt.get(), 0)),
        a1.set(e.vload(pt.get(), 16 * TV)),
        a2.set(e.vload(pt.get(), 32 * TV)),
        a3.set(e.vload(pt.get(), 48 * TV)),
        e.vstore(e.add(tb.get(), e.mulc(i.get(), 32)), y0, 0),
        e.vstore(e.add(tb.get(), e.mulc(i.get(), 32)), y1, 16),
        pt.set(e.addc(pt.get(), 64 * TV)),
      ]),
      pt.set(e.add(outB[t]!.get(), e.mulc(e.add(o0.get(), j.get()), 4 * HO * WO))),
      e.forc(i, 0, 2, 1, [
        // Column i of the tiles from the row sums s[r, i] (tb + 32·r + 16·i): output row 0 is
        // s0 + s1 + s2, row 1 is s1 - s2 - s3.
        a0.set(e.vload(e.add(tb.get(), e.mulc(i.get(), 16)), 0)),
        a1.set(e.vload(e.add(tb.get(), e.mulc(i.get(), 16)), 32)),
        a2.set(e.vload(e.add(tb.get(), e.mulc(i.get(), 16)), 64)),
        a3.set(e.vload(e.add(tb.get(), e.mulc(i.get(), 16)), 96)),
        d1.set(bias ? e.vadd(e.vadd(e.vadd(a0.get(), a1.get()), a2.get()), bias) : e.vadd(e.vadd(a0.get(), a1.get()), a2.get())),
        d2.set(bias ? e.vadd(e.vsub(e.vsub(a1.get(), a2.get()), a3.get()), e.copyExpr(bias)) : e.vsub(e.vsub(a1.get(), a2.get()), a3.get())),
        e.vstore(e.add(tb.get(), e.mulc(i.get(), 16)), d1.get(), 128),
        e.vstore(e.add(tb.get(), e.mulc(i.get(), 16)), d2.get(), 160),
      ]),
      // tb + 128: Y[0, 0], Y[0, 1], Y[1, 0], Y[1, 1] (row, column of the tile; lanes over tiles).
      a0.set(e.vload(tb.get(), 128)),
      a1.set(e.vload(tb.get(), 144)),
      a2.set(e.vload(tb.get(), 160)),
      a3.set(e.vload(tb.get(), 176)),
      e.vstore(pt.get(), m.i8x16.shuffle(a0.get(), a1.get(), ZIP_LO), 0),
      e.vstore(pt.get(), m.i8x16.shuffle(a0.get(), a1.get(), ZIP_HI), 16),
      e.vstore(pt.get(), m.i8x16.shuffle(a2.get(), a3.get(), ZIP_LO), 4 * WO),
      e.vstore(pt.get(), m.i8x16.shuffle(a2.get(), a3.get(), ZIP_HI), 4 * WO + 16),
    ];
  };

  return [ub.set(u), ...winogradStrips(e, fn, { xis: 16, C, O, u: ub.get(), count: NT, s, vb, mb, tb, sv, cc, j, o0, locate, input: inputTransform, output: outputTransform })];
}

