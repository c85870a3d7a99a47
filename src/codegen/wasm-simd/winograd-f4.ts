import type { ConvImage } from './conv.ts';
import { HIGH_PAIRS, LOW_PAIRS, ZIP_HI, ZIP_LO, type Emitter, type Fn, type Local, type X } from './emitter.ts';
import { OB, TV, transformWeights, vStrideOf, winogradStrips } from './winograd.ts';

/**
 * Winograd F(4×4, 3×3) convolution of one padded image (Lavin & Gray, 2015): each 4×4 block of
 * outputs ("tile") is A^T [(G w G^T) ⊙ (B^T d B)] A with d the tile's 6×6 input patch, so a tile
 * costs 36 multiply-adds per channel pair instead of 144 (F(2×2, 3×3): 64). Vectors run over
 * the 2×2 tiles of an 8×8 block of outputs (lane 2·ty + tx), so any image whose sides are
 * multiples of 8 fills every lane, ResNet's 8×8 stage included. The input transform combines
 * the patch's rows on whole image rows first (both tiles of a row at once), then transposes
 * into tile lanes; the output transform transposes back before storing rows.
 *
 * The products are 36 small GEMMs over the input channels, run with a register tile of OB output
 * channels × TV blocks. Transform entries are 1, 2, 4, 5, 8 and G's ¼, ⅙, 1/12, 1/24: the sums
 * are those of a direct convolution reassociated (and G's sixths rounded), with about 10× F(2×2)'s
 * rounding (test/runtime/wasm/winograd.test.ts); not across thread counts (each image is one
 * thread's, in a fixed order).
 */

/** Fewest channels on either side: below it F(2×2) (or the direct kernel) is left to run, untried. */
const MIN_CHANNELS = 8;

/** Whether winograd4Image computes this convolution: 3×3, stride 1, padded to HO + 2 × WO + 2, sides multiples of 8, output channels in fours. */
export function winograd4Fits(p: Pick<ConvImage, 'C' | 'O' | 'KH' | 'KW' | 'sh' | 'sw' | 'Hp' | 'Wp' | 'HO' | 'WO'>): boolean {
  return p.KH === 3 && p.KW === 3 && p.sh === 1 && p.sw === 1 && p.Hp === p.HO + 2 && p.Wp === p.WO + 2 && p.HO % 8 === 0 && p.WO % 8 === 0 && p.O % 4 === 0 && p.C >= MIN_CHANNELS && p.O >= MIN_CHANNELS;
}

/** Bytes of the transformed weights U [36, O, C]. */
export function winograd4WeightBytes(O: number, C: number): number {
  return 4 * 36 * O * C;
}

/**
 * Images per winograd4Image call: two where an image has an odd number of blocks, so that strips
 * stay whole (an 8×8 image is one block; alone, its GEMMs would run on half the register tile,
 * measured 1.9× slower).
 */
export function winograd4Images(p: Pick<ConvImage, 'HO' | 'WO'>): number {
  return ((p.HO / 8) * (p.WO / 8)) % 2 === 1 ? 2 : 1;
}

/** Bytes of winograd4Image's working buffers: V [36, C, TV], M [OB, 36, TV] vectors, and 36 vectors of row sums. */
export function winograd4ScratchBytes(C: number): number {
  return 36 * vStrideOf(C) + 16 * (OB * 36 * TV + 36);
}

/**
 * U [36, O, C] (see transformWeights) with G's rows ¼w0, -⅙(w0 + w1 + w2), -⅙(w0 - w1 + w2),
 * (1/24)w0 + (1/12)w1 + ⅙w2, (1/24)w0 - (1/12)w1 + ⅙w2, w2.
 */
export function winograd4Weights(e: Emitter, fn: Fn, u: X, O: number, C: number, at: (o: X, c: X, kh: number, kw: number) => X): X[] {
  const m = e.m;
  const k = (v: X, s: number) => m.f32.mul(v, e.f32(s));
  const add = (a: X, b: X) => m.f32.add(a, b);
  const sub = (a: X, b: X) => m.f32.sub(a, b);
  const rows = (v: (r: number) => X): X[] => [
    k(v(0), 0.25),
    k(add(add(v(0), v(1)), v(2)), -1 / 6),
    k(add(sub(v(0), v(1)), v(2)), -1 / 6),
    add(add(k(v(0), 1 / 24), k(v(1), 1 / 12)), k(v(2), 1 / 6)),
    add(sub(k(v(0), 1 / 24), k(v(1), 1 / 12)), k(v(2), 1 / 6)),
    v(2),
  ];
  return transformWeights(e, fn, { n: 6, rows }, u, O, C, at);
}

/**
 * F(4×4)'s transforms on vectors over the 4 tiles of a block (lane 2·ty + tx), in locals of fn:
 * each reads its operands from d (d[0..5]) and hands each result to `store`.
 */
export function f4Transforms(e: Emitter, fn: Fn) {
  const m = e.m;
  const d = Array.from({ length: 6 }, () => fn.v128());
  const [q0, q1, q2, q3] = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
  const [ty, i, pt, pd] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
  const k = (v: X, n: number) => e.vmul(v, e.vconst(n));
  const dv = d.map((l) => () => l.get());
  const [d0, d1, d2, d3, d4, d5] = dv as [() => X, () => X, () => X, () => X, () => X, () => X];

  /** B^T over d[0..5] (rows of a patch, or columns of the row transform): output b = 0..5. */
  const bt = (store: (b: number, v: X) => X): X[] => [
    store(0, e.vadd(e.vsub(k(d0(), 4), k(d2(), 5)), d4())),
    q0.set(e.vsub(d4(), k(d2(), 4))),
    q1.set(e.vsub(d3(), k(d1(), 4))),
    store(1, e.vadd(q0.get(), q1.get())),
    store(2, e.vsub(q0.get(), q1.get())),
    q0.set(e.vsub(d4(), d2())),
    q1.set(k(e.vsub(d3(), d1()), 2)),
    store(3, e.vadd(q0.get(), q1.get())),
    store(4, e.vsub(q0.get(), q1.get())),
    store(5, e.vadd(e.vsub(k(d1(), 4), k(d3(), 5)), d5())),
  ];
  /** A^T over d[0..5]: output rows 0..3 (the forward's 4×4 tile), or 0..2 with `rows` 3: A^T's first three rows and the last column of the weight gradient's A'^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 1]. */
  const at = (store: (r: number, v: X) => X, rows = 4): X[] => [
    q0.set(e.vadd(d1(), d2())),
    q1.set(e.vsub(d1(), d2())),
    q2.set(e.vadd(d3(), d4())),
    q3.set(e.vsub(d3(), d4())),
    store(0, e.vadd(e.vadd(d0(), q0.get()), q2.get())),
    store(1, e.vadd(q1.get(), k(q3.get(), 2))),
    ...(rows === 4 ? [store(2, e.vadd(q0.get(), k(q2.get(), 4))), store(3, e.vadd(e.vadd(q1.get(), k(q3.get(), 8)), d5()))] : [store(2, e.vadd(e.vadd(q0.get(), k(q2.get(), 4)), d5()))]),
  ];
  /** The weight gradient's G' over d[0..3] (a tile's 4 gradients): ¼g0, -⅙(g0+g1+g2+g3), -⅙(g0-g1+g2-g3), (g0+2g1+4g2+8g3)/24, (g0-2g1+4g2-8g3)/24, g3. */
  const gt = (store: (b: number, v: X) => X): X[] => [
    store(0, k(d0(), 0.25)),
    q0.set(e.vadd(d0(), d2())),
    q1.set(e.vadd(d1(), d3())),
    store(1, k(e.vadd(q0.get(), q1.get()), -1 / 6)),
    store(2, k(e.vsub(q0.get(), q1.get()), -1 / 6)),
    q0.set(e.vadd(d0(), k(d2(), 4))),
    q1.set(e.vadd(k(d1(), 2), k(d3(), 8))),
    store(3, k(e.vadd(q0.get(), q1.get()), 1 / 24)),
    store(4, k(e.vsub(q0.get(), q1.get()), 1 / 24)),
    store(5, d3()),
  ];
  /** The 4×4 transpose of vectors (a, b, c, dd) to `store`: row l is lane l of each (the first `rows` rows). */
  const transpose = (a: X, b: X, c: X, dd: X, store: (l: number, v: X) => X, rows = 4): X[] => [
    q0.set(m.i8x16.shuffle(a, b, ZIP_LO)),
    q1.set(m.i8x16.shuffle(c, dd, ZIP_LO)),
    ...(rows > 2 ? [q2.set(m.i8x16.shuffle(e.copyExpr(a), e.copyExpr(b), ZIP_HI)), q3.set(m.i8x16.shuffle(e.copyExpr(c), e.copyExpr(dd), ZIP_HI))] : []),
    store(0, m.i8x16.shuffle(q0.get(), q1.get(), LOW_PAIRS)),
    store(1, m.i8x16.shuffle(q0.get(), q1.get(), HIGH_PAIRS)),
    ...(rows > 2 ? [store(2, m.i8x16.shuffle(q2.get(), q3.get(), LOW_PAIRS)), store(3, m.i8x16.shuffle(q2.get(), q3.get(), HIGH_PAIRS))] : []),
  ];

  /**
   * V = B^T x B for a block's 4 tiles of one channel: x's block corner at src (rows 4·Wp bytes
   * apart), V[ξ] to dst + ξ·stride; tb 36 vectors of scratch. Rows first, on the image's own rows
   * (columns 0-3, 4-7 and 8-9 of the block: both tiles of a row): T[ty, a, col] at tb +
   * 16·(18·ty + 3·a + col); then per a, the transpose into tile lanes and B^T over columns.
   */
  const input = (src: X, Wp: number, tb: X, dst: X, stride: number): X[] => {
    const rowT = (col: number): X[] => [
      ...d.map((l, r) => l.set(col < 2 ? e.vload(pt.get(), 4 * r * Wp + 16 * col) : m.v128.load64_zero(4 * r * Wp + 32, 8, pt.get()))),
      ...bt((a, v) => e.vstore(e.add(e.copyExpr(tb), e.mulc(ty.get(), 16 * 18)), v, 16 * (3 * a + col))),
    ];
    const tAt = (tyy: number, col: number) => e.vload(pt.get(), 16 * (18 * tyy + col));
    return [
      pd.set(dst),
      e.forc(ty, 0, 2, 1, [pt.set(e.add(e.copyExpr(src), e.mulc(ty.get(), 16 * Wp))), ...rowT(0), ...rowT(1), ...rowT(2)]),
      e.forc(i, 0, 6, 1, [
        pt.set(e.add(e.copyExpr(tb), e.mulc(i.get(), 48))),
        ...transpose(tAt(0, 0), tAt(0, 1), tAt(1, 0), tAt(1, 1), (l, v) => d[l]!.set(v)),
        ...transpose(tAt(0, 1), tAt(0, 2), tAt(1, 1), tAt(1, 2), (l, v) => d[4 + l]!.set(v), 2),
        ...bt((b, v) => e.vstore(e.add(pd.get(), e.mulc(i.get(), 6 * stride)), v, b * stride)),
      ]),
    ];
  };

  /**
   * Gg = G' g G'^T for a block's 4 tiles of one output channel's gradient: the block's corner at
   * src (rows 4·W bytes apart), Gg[ξ] to dst + ξ·stride; tb 24 vectors of scratch. Rows first
   * (R[ty, a, col] at tb + 16·(12·ty + 2·a + col)), then per a the transpose and G' over columns.
   */
  const grad = (src: X, W: number, tb: X, dst: X, stride: number): X[] => {
    const rAt = (tyy: number, col: number) => e.vload(pt.get(), 16 * (12 * tyy + col));
    return [
      pd.set(dst),
      e.forc(ty, 0, 2, 1, [
        pt.set(e.add(e.copyExpr(src), e.mulc(ty.get(), 16 * W))),
        ...[0, 1].flatMap((col) => [...d.slice(0, 4).map((l, r) => l.set(e.vload(pt.get(), 4 * r * W + 16 * col))), ...gt((a, v) => e.vstore(e.add(e.copyExpr(tb), e.mulc(ty.get(), 16 * 12)), v, 16 * (2 * a + col)))]),
      ]),
      e.forc(i, 0, 6, 1, [
        pt.set(e.add(e.copyExpr(tb), e.mulc(i.get(), 32))),
        ...transpose(rAt(0, 0), rAt(0, 1), rAt(1, 0), rAt(1, 1), (l, v) => d[l]!.set(v)),
        ...gt((b, v) => e.vstore(e.add(pd.get(), e.mulc(i.get(), 6 * stride)), v, b * stride)),
      ]),
    ];
  };

  return { d, i, pt, at, transpose, input, grad };
}

/**
 * out[o, ·, ·] = conv3×3(x, w)[o] (+ bias) for `count` consecutive images: x [count, C, HO+2,
 * WO+2] padded, out [count, O, HO, WO], U from winograd4Weights, `s` winograd4ScratchBytes of
 * this thread's scratch. Strips of TV blocks (row-major over the images' 8×8 blocks) go through:
 * the input transform of every channel into V; then per OB output channels the 36 GEMMs into M
 * and the output transform into out. Loops keep each basic block's loads few (see tapLoop in
 * conv.ts).
 */
export function winograd4Image(e: Emitter, fn: Fn, p: ConvImage, u: X, x: Local, out: Local, s: X, count: number): X[] {
  const m = e.m;
  const { C, O, HO, WO, Wp } = p;
  const BC = WO / 8;
  const perImage = (HO / 8) * BC;
  const NB = count * perImage;
  const plane = 4 * p.Hp * Wp;
  const [vb, mb, tb, sv, cc, o0, j] = Array.from({ length: 7 }, () => fn.i32());
  const inB = Array.from({ length: TV }, () => fn.i32());
  const outB = Array.from({ length: TV }, () => fn.i32());
  const f4 = f4Transforms(e, fn);
  const { d, i, pt, at, transpose } = f4;
  const vStride = vStrideOf(C);

  // Block sv + t: image ⌊· / perImage⌋, and within it block row ⌊·/BC⌋, column · mod BC.
  const locate = (t: number): X[] => {
    const blk = e.addc(sv.get(), t);
    const img = count > 1 ? m.i32.div_u(blk, e.i32(perImage)) : undefined;
    const local = count > 1 ? m.i32.rem_u(e.copyExpr(blk), e.i32(perImage)) : blk;
    const by = m.i32.div_u(local, e.i32(BC));
    const bx = m.i32.rem_u(e.copyExpr(local), e.i32(BC));
    const imgIn = img === undefined ? x.get() : e.add(x.get(), e.mulc(img, C * plane));
    const imgOut = img === undefined ? out.get() : e.add(out.get(), e.mulc(e.copyExpr(img), 4 * O * HO * WO));
    return [inB[t]!.set(e.add(imgIn, e.add(e.mulc(by, 32 * Wp), e.mulc(bx, 32)))), outB[t]!.set(e.add(imgOut, e.add(e.mulc(e.copyExpr(by), 32 * WO), e.mulc(e.copyExpr(bx), 32))))];
  };

  // V[ξ, cc, t] of the block's 4 tiles of channel cc.
  const inputTransform = (t: number): X[] => f4.input(e.add(inB[t]!.get(), e.mulc(cc.get(), plane)), Wp, tb.get(), e.add(vb.get(), e.addc(e.mulc(cc.get(), 16 * TV), 16 * t)), vStride);

  // Y = A^T M A for output channel o0 + j, block t: A^T over M's rows (each column b) into
  // Z [4, 6] at tb, then over Z's columns per output row r, transposed back to the tiles' rows.
  const outputTransform = (t: number): X[] => {
    const bias = p.bias === undefined ? undefined : () => e.vsplatLoad(e.add(e.i32(p.bias!), e.mulc(e.add(o0.get(), j.get()), 4)));
    const row = (r: number, v: X) => e.vstore(tb.get(), bias ? e.vadd(v, bias()) : v, 16 * (24 + r));
    const y = (r: number) => e.vload(tb.get(), 16 * (24 + r));
    // Tile l's row i: output row 4·(l >> 1) + i, columns 4·(l & 1) .. + 3 of the block.
    const store = (l: number, v: X) => e.vstore(e.add(pt.get(), e.mulc(i.get(), 4 * WO)), v, 4 * (4 * (l >> 1) * WO + 4 * (l & 1)));
    return [
      pt.set(e.add(mb.get(), e.addc(e.mulc(j.get(), 16 * 36 * TV), 16 * t))),
      e.forc(i, 0, 6, 1, [
        ...d.map((l, a) => l.set(e.vload(e.add(pt.get(), e.mulc(i.get(), 16 * TV)), 16 * TV * 6 * a))),
        ...at((r, v) => e.vstore(e.add(tb.get(), e.mulc(i.get(), 16)), v, 16 * 6 * r)),
      ]),
      pt.set(e.add(outB[t]!.get(), e.mulc(e.add(o0.get(), j.get()), 4 * HO * WO))),
      e.forc(i, 0, 4, 1, [
        ...d.map((l, b) => l.set(e.vload(e.add(tb.get(), e.mulc(i.get(), 16 * 6)), 16 * b))),
        ...at(row),
        ...transpose(y(0), y(1), y(2), y(3), store),
      ]),
    ];
  };

  return winogradStrips(e, fn, { xis: 36, C, O, u, count: NB, s, vb, mb, tb, sv, cc, j, o0, locate, input: inputTransform, output: outputTransform });
}
