import { EVEN, ODD, type Emitter, type Fn, type Local, type X } from './emitter.ts';
import { onThread0, sharedLoop, span, type KernelCtx } from './kernel.ts';
import { padImage } from './conv.ts';
import { winogradInput } from './winograd.ts';
import { f4Transforms } from './winograd-f4.ts';

/** The weight gradient's dimensions: g [N, O, HO, WO], x [N, C, H, W] padded by (ph, pw) to HO + 2 × WO + 2. */
export interface GradWeightDims {
  N: number;
  O: number;
  C: number;
  HO: number;
  WO: number;
}

interface Input {
  H: number;
  W: number;
  ph: number;
  pw: number;
}

/** Whether winogradGradWeight computes dw of this 3×3 stride-1 convolution (checked by the caller): whole tile vectors, channels in fours, enough of them to pay. */
export function winogradGradWeightFits(d: GradWeightDims): boolean {
  return d.HO % 2 === 0 && d.WO % 8 === 0 && d.O % 4 === 0 && d.C % 4 === 0 && d.O >= 8 && d.C >= 8;
}

/** The emitters of one algorithm, with their locals: see Variant.make. */
interface Emitters {
  /** The input transform of one channel's patches: x's corner at src, V[ξ] to dst + ξ·stride. */
  input(src: X, tb: Local, dst: X, stride: number): X[];
  /** The gradient's transform of one output channel's tiles: g's corner at src, Gg[ξ] to dst + ξ·stride. */
  grad(src: X, tb: Local, dst: X, stride: number): X[];
  /** dw[o, c .. c+3] from the summed products S[ξ] at tb + 16·ξ (lanes over the 4 input channels): lane l of tap (kh, kw) to pw + 4·(9·l + 3·kh + kw). */
  finish(tb: Local, pw: Local): X[];
}

/**
 * A Winograd weight gradient: xis products per tile vector (the vectors' lanes are 4 tiles), an
 * image's tile vectors in `rows` rows of `perRow`, tile vector (ty, tx) at `inOff` bytes into an
 * input plane and `gOff` into a gradient plane.
 */
interface Variant {
  xis: number;
  rows: number;
  perRow: number;
  inOff(e: Emitter, ty: X, tx: X): X;
  gOff(e: Emitter, ty: X, tx: X): X;
  /** Tile vectors a chunk of images sums before its partials are stored (its GEMMs' depth). */
  chunk: number;
  /** Bytes of the transforms' scratch at tb, in each phase. */
  tbBytes: number;
  make(e: Emitter, fn: Fn): Emitters;
}

/**
 * F(3×3, 2×2): each 2×2 tile of g correlated with its 4×4 input patch gives a 3×3 contribution
 * A^T [(G g G^T) ⊙ (B^T d B)] A, 16 multiply-adds per tile and channel pair instead of 36. B^T is
 * the forward's (winogradInput); G = [1 0; ½ ½; ½ -½; 0 -1] and A^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1]
 * (row 3 of G negated to match that B^T's row 3). Lanes over 4 horizontally adjacent tiles.
 */
function f2(d: GradWeightDims): Variant {
  const { HO, WO } = d;
  const Wp = WO + 2;
  return {
    xis: 16,
    rows: HO / 2,
    perRow: WO / 8,
    inOff: (e, ty, tx) => e.add(e.mulc(ty, 8 * Wp), e.mulc(tx, 32)),
    gOff: (e, ty, tx) => e.add(e.mulc(ty, 8 * WO), e.mulc(tx, 32)),
    chunk: 128,
    tbBytes: 256 + 192,
    make(e, fn) {
      const m = e.m;
      const a = [fn.v128(), fn.v128(), fn.v128(), fn.v128()] as const;
      const [d1, d2] = [fn.v128(), fn.v128()];
      const [i, j, pt] = [fn.i32(), fn.i32(), fn.i32()];
      const h = Array.from({ length: 8 }, () => fn.v128());
      const half = e.vconst(0.5);
      // Gg = G g G^T of an output channel's 2×2 tiles: rows of g, h[r, k] = (G g)[r, k], then columns.
      const grad = (src: X, _tb: Local, dst: X, stride: number): X[] => {
        const st: X[] = [pt.set(src)];
        for (let r = 0; r < 2; r++) st.push(a[2 * r]!.set(e.vload(pt.get(), 4 * r * WO)), a[2 * r + 1]!.set(e.vload(pt.get(), 4 * r * WO + 16)));
        const rows = [0, 1].map((r) => [m.i8x16.shuffle(a[2 * r]!.get(), a[2 * r + 1]!.get(), EVEN), m.i8x16.shuffle(a[2 * r]!.get(), a[2 * r + 1]!.get(), ODD)] as const);
        // G rows: g0, ½(g0 + g1), ½(g0 - g1), -g1 (over the tile's rows, each column k).
        for (let k = 0; k < 2; k++) {
          st.push(h[k]!.set(rows[0]![k]!), h[6 + k]!.set(m.f32x4.neg(rows[1]![k]!)));
          st.push(h[2 + k]!.set(e.vmul(e.vadd(h[k]!.get(), m.f32x4.neg(h[6 + k]!.get())), e.copyExpr(half))));
          st.push(h[4 + k]!.set(e.vmul(e.vadd(h[k]!.get(), h[6 + k]!.get()), e.copyExpr(half))));
        }
        st.push(pt.set(dst));
        for (let r = 0; r < 4; r++) {
          const [c0, c1] = [h[2 * r]!, h[2 * r + 1]!];
          const at = (k: number) => (4 * r + k) * stride;
          st.push(e.vstore(pt.get(), c0.get(), at(0)));
          st.push(e.vstore(pt.get(), e.vmul(e.vadd(c0.get(), c1.get()), e.copyExpr(half)), at(1)));
          st.push(e.vstore(pt.get(), e.vmul(e.vsub(c0.get(), c1.get()), e.copyExpr(half)), at(2)));
          st.push(e.vstore(pt.get(), m.f32x4.neg(c1.get()), at(3)));
        }
        return st;
      };
      // Row a of the 4×4 sums → 3 values (A^T's rows) at tb + 256 + 48·a; then column kw of those → dw[·, ·, kh, kw].
      const [y0, y1, y2] = [fn.v128(), fn.v128(), fn.v128()];
      const finish = (tb: Local, pw: Local): X[] => [
        e.forc(i, 0, 4, 1, [
          pt.set(e.add(tb.get(), e.mulc(i.get(), 64))),
          ...a.map((x, q) => x.set(e.vload(pt.get(), 16 * q))),
          pt.set(e.add(tb.get(), e.addc(e.mulc(i.get(), 48), 256))),
          e.vstore(pt.get(), e.vadd(e.vadd(a[0].get(), a[1].get()), a[2].get()), 0),
          e.vstore(pt.get(), e.vsub(a[1].get(), a[2].get()), 16),
          e.vstore(pt.get(), e.vadd(e.vadd(a[1].get(), a[2].get()), a[3].get()), 32),
        ]),
        e.forc(j, 0, 3, 1, [
          pt.set(e.add(tb.get(), e.addc(e.mulc(j.get(), 16), 256))),
          ...a.map((x, q) => x.set(e.vload(pt.get(), 48 * q))),
          y0.set(e.vadd(e.vadd(a[0].get(), a[1].get()), a[2].get())),
          y1.set(e.vsub(a[1].get(), a[2].get())),
          y2.set(e.vadd(e.vadd(a[1].get(), a[2].get()), a[3].get())),
          pt.set(e.add(pw.get(), e.mulc(j.get(), 4))),
          ...[y0, y1, y2].flatMap((y, kh) => [0, 1, 2, 3].map((l) => m.v128.store32_lane(4 * (9 * l + 3 * kh), 4, l, pt.get(), y.get()))),
        ]),
      ];
      return { input: (src, tb, dst, stride) => winogradInput(e, { a, d1, d2, i, j, pt, tb }, src, Wp, dst, stride), grad, finish };
    },
  };
}

/**
 * F(3×3, 4×4): each 4×4 tile of g with its 6×6 input patch, 36 multiply-adds per tile and
 * channel pair instead of 144. B^T is the forward F(4×4, 3×3)'s; G' (6×4) and A'^T = [1 1 1 1 1 0;
 * 0 1 -1 2 -2 0; 0 1 1 4 4 1] are those of the same points 0, ±1, ±2 (f4Transforms). Lanes over
 * the 2×2 tiles of an 8×8 block; a chunk of 32 blocks keeps V and Gg (36 × 32 vectors a channel)
 * within the second-level cache a product at a time.
 */
function f4(d: GradWeightDims): Variant {
  const { HO, WO } = d;
  const Wp = WO + 2;
  return {
    xis: 36,
    rows: HO / 8,
    perRow: WO / 8,
    inOff: (e, ty, tx) => e.add(e.mulc(ty, 32 * Wp), e.mulc(tx, 32)),
    gOff: (e, ty, tx) => e.add(e.mulc(ty, 32 * WO), e.mulc(tx, 32)),
    chunk: 32,
    tbBytes: 16 * (36 + 18),
    make(e, fn) {
      const m = e.m;
      const t = f4Transforms(e, fn);
      const { d: dv, i, pt } = t;
      const r = fn.i32();
      // A'^T over the sums' rows (each column b: Z[kh, b] at tb + 576 + 16·(6·kh + b)), then over
      // Z's columns for each kh.
      const finish = (tb: Local, pw: Local): X[] => [
        e.forc(i, 0, 6, 1, [
          pt.set(e.add(tb.get(), e.mulc(i.get(), 16))),
          ...dv.map((l, a) => l.set(e.vload(pt.get(), 16 * 6 * a))),
          ...t.at((kh, v) => e.vstore(pt.get(), v, 576 + 16 * 6 * kh), 3),
        ]),
        e.forc(r, 0, 3, 1, [
          pt.set(e.add(tb.get(), e.addc(e.mulc(r.get(), 16 * 6), 576))),
          ...dv.map((l, b) => l.set(e.vload(pt.get(), 16 * b))),
          pt.set(e.add(pw.get(), e.mulc(r.get(), 12))),
          ...t.at((kw, v) => e.block([0, 1, 2, 3].map((l) => m.v128.store32_lane(4 * (9 * l + kw), 4, l, e.copyExpr(pt.get()), l === 0 ? v : m.copyExpression(v)))), 3),
        ]),
      ];
      return { input: (src, tb, dst, stride) => t.input(src, Wp, tb.get(), dst, stride), grad: (src, tb, dst, stride) => t.grad(src, WO, tb.get(), dst, stride), finish };
    },
  };
}

/** Whether F(3×3, 4×4) computes dw: sides multiples of 8, beyond winogradGradWeightFits. */
export function winograd4GradWeightFits(d: GradWeightDims): boolean {
  return winogradGradWeightFits(d) && d.HO % 8 === 0 && d.WO % 8 === 0;
}

/**
 * dw of a 3×3 stride-1 convolution as Winograd F(3×3, 4×4) where the sides are multiples of 8,
 * else F(3×3, 2×2): the sum over tiles is taken in the transformed domain, so dw = A^T (Σ_tiles
 * G g G^T ⊙ B^T d B) A, xis GEMMs S[ξ] = Gg[ξ] · V[ξ]^T over all tiles.
 *
 * Images go in fixed chunks of about `chunk` tile vectors; a thread takes a chunk, copies each
 * image with its zero border into its scratch (when padded), transforms its inputs (V [xis, C,
 * tv]) and gradients (Gg [xis, O, tv]) into its scratch, and runs the GEMMs with 4 output × 2
 * input channels of vector accumulators over the chunk's tile vectors (lanes over 4 tiles, added
 * across at the end): its partials S [xis, O, C] go to the chunk's slot. A second phase adds the
 * chunks in order and applies A^T · A: the same sums in the same order whatever the thread count.
 */
export function winogradGradWeight(c: KernelCtx, d: GradWeightDims & Input): void {
  const { e } = c;
  const m = e.m;
  const { N, O, C, HO, WO, H, W, ph, pw } = d;
  const v = winograd4GradWeightFits(d) ? f4(d) : f2(d);
  const { xis } = v;
  const padded = ph > 0 || pw > 0;
  const x = c.inAddr(1);
  const Wp = WO + 2;
  const plane = 4 * (HO + 2) * Wp;
  const perImage = v.rows * v.perRow;
  const B = Math.min(N, Math.max(1, Math.ceil(v.chunk / perImage)));
  const chunks = Math.ceil(N / B);
  const g = c.inAddr(0);
  const dw = c.outAddr(0);
  const sBytes = 4 * xis * O * C;
  const partials = c.sharedScratch(chunks * sBytes);

  c.phase((fn, tid) => {
    const [chunk, n, tv, cc, o, xi, ob, cb, pv, pg, ps, ty, tx, vb, gb, tb] = Array.from({ length: 16 }, () => fn.i32());
    const cnt = fn.i32();
    const acc = Array.from({ length: 8 }, () => fn.v128());
    const gv = Array.from({ length: 4 }, () => fn.v128());
    const xv = Array.from({ length: 2 }, () => fn.v128());
    const tmp = fn.v128();
    const em = v.make(e, fn);
    const TV = B * perImage; // tile vectors of a full chunk; a last, shorter chunk leaves slots unused
    // A line more than the slots: ξ-strides of a power of two put all of a tile's stores in one
    // cache set (measured: the transforms 2.5× slower).
    const vStride = 16 * C * TV + 64;
    const gStride = 16 * O * TV + 64;
    const first = e.mulc(chunk.get(), B);
    const [hi, img, pad] = [fn.i32(), fn.i32(), fn.i32()];

    // Slot k of the chunk: image n = chunk·B + ⌊k / perImage⌋, tile vector k mod perImage.
    const locate = [ty.set(m.i32.div_u(tv.get(), e.i32(v.perRow))), tx.set(m.i32.rem_u(tv.get(), e.i32(v.perRow)))];
    const slot = (n0: X) => e.add(e.mulc(e.sub(n.get(), n0), perImage), tv.get());
    const inputs = e.forc(cc, 0, C, 1, em.input(e.add(img.get(), e.add(e.mulc(cc.get(), plane), v.inOff(e, ty.get(), tx.get()))), tb, e.add(vb.get(), e.mulc(e.add(e.mulc(cc.get(), TV), slot(e.copyExpr(first))), 16)), vStride));
    const gAt = e.add(e.i32(g), e.add(e.mulc(n.get(), 4 * O * HO * WO), e.add(e.mulc(o.get(), 4 * HO * WO), v.gOff(e, ty.get(), tx.get()))));
    const grads = e.forc(o, 0, O, 1, em.grad(gAt, tb, e.add(gb.get(), e.mulc(e.add(e.mulc(o.get(), TV), slot(e.copyExpr(first))), 16)), gStride));

    // S[ξ, o, c] over the chunk's cnt tile vectors, 4 output × 2 input channels at a time.
    const gemm = e.forc(xi, 0, xis, 1, [
      e.forc(ob, 0, O, 4, [
        e.forc(cb, 0, C, 2, [
          ...acc.map((a) => a.set(e.vzero())),
          pg.set(e.add(gb.get(), e.add(e.mulc(xi.get(), gStride), e.mulc(ob.get(), 16 * TV)))),
          pv.set(e.add(vb.get(), e.add(e.mulc(xi.get(), vStride), e.mulc(cb.get(), 16 * TV)))),
          e.for(tv, e.i32(0), cnt.get(), 1, [
            ...gv.map((a, q) => a.set(e.vload(pg.get(), 16 * q * TV))),
            ...xv.map((a, q) => a.set(e.vload(pv.get(), 16 * q * TV))),
            ...acc.map((a, k) => a.set(e.madd(gv[k >> 1]!.get(), xv[k & 1]!.get(), a.get()))),
            pg.set(e.addc(pg.get(), 16)),
            pv.set(e.addc(pv.get(), 16)),
          ]),
          ps.set(e.add(e.i32(partials), e.add(e.mulc(chunk.get(), sBytes), e.mulc(e.add(e.mulc(e.add(e.mulc(xi.get(), O), ob.get()), C), cb.get()), 4)))),
          ...acc.map((a, k) => e.storef(ps.get(), e.hsum(a.get(), tmp), 4 * ((k >> 1) * C + (k & 1)))),
        ]),
      ]),
    ]);

    const chunkWork: X[] = [
      // cnt = tile vectors in this chunk (the last may hold fewer images).
      hi.set(m.select(m.i32.lt_u(e.mulc(e.addc(chunk.get(), 1), B), e.i32(N)), e.mulc(e.addc(chunk.get(), 1), B), e.i32(N))),
      cnt.set(e.mulc(e.sub(hi.get(), e.mulc(chunk.get(), B)), perImage)),
      e.for(n, e.mulc(chunk.get(), B), hi.get(), 1, [
        // A padded image is copied with its zero border into this thread's scratch first.
        ...(padded ? [img.set(pad.get()), ...padImage(e, fn, img, x, n, C, H, W, ph, pw)] : [img.set(e.add(e.i32(x), e.mulc(n.get(), C * plane)))]),
        e.forc(tv, 0, perImage, 1, [...locate, inputs, grads]),
      ]),
      gemm,
    ];
    const init = [vb.set(c.threadScratch(xis * vStride, tid)), gb.set(c.threadScratch(gStride * xis, tid)), tb.set(c.threadScratch(v.tbBytes, tid)), ...(padded ? [pad.set(c.threadScratch(C * plane, tid))] : [])];
    if (e.T > 1 && chunks >= e.T) return [...init, ...sharedLoop(c, fn, chunk, chunks, chunkWork)];
    return onThread0(e, tid, [...init, e.forc(chunk, 0, chunks, 1, chunkWork)]);
  });

  // dw[o, c] = A^T (Σ_chunks S[·, o, c]) A, threads taking output channels: per (o, 4 input
  // channels) the xis sums in tb (vectors over c), then the variant's A^T · A.
  c.phase((fn, tid) => {
    const [o, cv, xi, k, tb, ps, pwl] = Array.from({ length: 7 }, () => fn.i32());
    const sum = fn.v128();
    const em = v.make(e, fn);
    const sp = span(e, fn, tid, O);
    const sums = e.forc(xi, 0, xis, 1, [
      ps.set(e.add(e.i32(partials), e.mulc(e.add(e.mulc(e.add(e.mulc(xi.get(), O), o.get()), C), cv.get()), 4))),
      sum.set(e.vload(ps.get())),
      ...(chunks > 1 ? [e.forc(k, 1, chunks, 1, [ps.set(e.addc(ps.get(), sBytes)), sum.set(e.vadd(sum.get(), e.vload(ps.get())))])] : []),
      e.vstore(e.add(tb.get(), e.mulc(xi.get(), 16)), sum.get()),
    ]);
    const at = pwl.set(e.add(e.i32(dw), e.mulc(e.mulc(e.add(e.mulc(o.get(), C), cv.get()), 9), 4)));
    return [...sp.init, tb.set(c.threadScratch(v.tbBytes, tid)), e.for(o, sp.lo.get(), sp.hi.get(), 1, [e.forc(cv, 0, C, 4, [sums, at, ...em.finish(tb, pwl)])])];
  });
}
