import { EVEN, ODD, type X } from './emitter.ts';
import { onThread0, sharedLoop, span, type KernelCtx } from './kernel.ts';
import { padImage } from './conv.ts';
import { winogradInput } from './winograd.ts';

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

/** Tile vectors a chunk of images sums before its partials are stored (its GEMMs' depth). */
const CHUNK_TILE_VECTORS = 128;

/**
 * dw of a 3×3 stride-1 convolution as Winograd F(3×3, 2×2): each 2×2 tile of g correlated with
 * its 4×4 input patch gives a 3×3 contribution A^T [(G g G^T) ⊙ (B^T d B)] A, and the sum over
 * tiles is taken in the transformed domain, so dw = A^T (Σ_tiles G g G^T ⊙ B^T d B) A: 16 GEMMs
 * S[ξ] = Gg[ξ] · V[ξ]^T over all tiles, 16 multiply-adds per tile and channel pair instead of 36.
 * B^T is the forward's (winogradInput); G = [1 0; ½ ½; ½ -½; 0 -1] and A^T = [1 1 1 0; 0 1 -1 0;
 * 0 1 1 1] (row 3 of G negated to match that B^T's row 3).
 *
 * Images go in fixed chunks of about CHUNK_TILE_VECTORS tile vectors; a thread takes a chunk,
 * copies each image with its zero border into its scratch (when padded), transforms its inputs (V [16, C, tv]) and gradients (Gg [16, O, tv]) into its scratch, and runs
 * the GEMMs with 4 output × 2 input channels of vector accumulators over the chunk's tile
 * vectors (lanes over 4 tiles, added across at the end): its partials S [16, O, C] go to the
 * chunk's slot. A second phase adds the chunks in order and applies A^T · A: the same sums in the
 * same order whatever the thread count.
 */
export function winogradGradWeight(c: KernelCtx, d: GradWeightDims & Input): void {
  const { e } = c;
  const m = e.m;
  const { N, O, C, HO, WO, H, W, ph, pw } = d;
  const padded = ph > 0 || pw > 0;
  const x = c.inAddr(1);
  const Wp = WO + 2;
  const plane = 4 * (HO + 2) * Wp;
  const TVr = WO / 8;
  const perImage = (HO / 2) * TVr;
  const B = Math.min(N, Math.max(1, Math.ceil(CHUNK_TILE_VECTORS / perImage)));
  const chunks = Math.ceil(N / B);
  const g = c.inAddr(0);
  const dw = c.outAddr(0);
  const sBytes = 4 * 16 * O * C;
  const partials = c.sharedScratch(chunks * sBytes);

  c.phase((fn, tid) => {
    const [chunk, n, tv, cc, o, xi, ob, cb, pv, pg, ps, ty, tx, vb, gb, tb] = Array.from({ length: 16 }, () => fn.i32());
    const [i, j, pt, cnt] = Array.from({ length: 4 }, () => fn.i32());
    const a = [fn.v128(), fn.v128(), fn.v128(), fn.v128()] as const;
    const [d1, d2] = [fn.v128(), fn.v128()];
    const acc = Array.from({ length: 8 }, () => fn.v128());
    const gv = Array.from({ length: 4 }, () => fn.v128());
    const xv = Array.from({ length: 2 }, () => fn.v128());
    const h = Array.from({ length: 8 }, () => fn.v128());
    const tmp = fn.v128();
    const TV = B * perImage; // tile vectors of a full chunk; a last, shorter chunk leaves slots unused
    // A line more than the slots: ξ-strides of a power of two put all 16 of a tile's stores in one
    // cache set (measured: the transforms 2.5× slower).
    const vStride = 16 * C * TV + 64;
    const gStride = 16 * O * TV + 64;
    const first = e.mulc(chunk.get(), B);
    const [hi, img, pad] = [fn.i32(), fn.i32(), fn.i32()];

    // Slot k of the chunk: image n = chunk·B + ⌊k / perImage⌋, tile vector k mod perImage.
    const locate = [ty.set(m.i32.div_u(tv.get(), e.i32(TVr))), tx.set(m.i32.rem_u(tv.get(), e.i32(TVr)))];
    const slot = (n0: X) => e.add(e.mulc(e.sub(n.get(), n0), perImage), tv.get());
    const inputs = e.forc(cc, 0, C, 1, [
      ...winogradInput(
        e,
        { a, d1, d2, i, j, pt, tb },
        e.add(img.get(), e.add(e.mulc(cc.get(), plane), e.add(e.mulc(ty.get(), 8 * Wp), e.mulc(tx.get(), 32)))),
        Wp,
        e.add(vb.get(), e.mulc(e.add(e.mulc(cc.get(), TV), slot(e.copyExpr(first))), 16)),
        vStride,
      ),
    ]);
    // Gg = G g G^T of output channel o's 2×2 tiles: rows of g, h[r, k] = (G g)[r, k], then columns.
    const gTransform = (): X[] => {
      const src = e.add(e.i32(g), e.add(e.mulc(n.get(), 4 * O * HO * WO), e.add(e.mulc(o.get(), 4 * HO * WO), e.add(e.mulc(ty.get(), 8 * WO), e.mulc(tx.get(), 32)))));
      const st: X[] = [pt.set(src)];
      const rows: [X, X][] = [];
      for (let r = 0; r < 2; r++) {
        st.push(a[2 * r]!.set(e.vload(pt.get(), 4 * r * WO)), a[2 * r + 1]!.set(e.vload(pt.get(), 4 * r * WO + 16)));
      }
      for (let r = 0; r < 2; r++) rows.push([m.i8x16.shuffle(a[2 * r]!.get(), a[2 * r + 1]!.get(), EVEN), m.i8x16.shuffle(a[2 * r]!.get(), a[2 * r + 1]!.get(), ODD)]);
      // G rows: g0, ½(g0 + g1), ½(g0 - g1), -g1 (over the tile's rows, each column k).
      const half = e.vconst(0.5);
      for (let k = 0; k < 2; k++) {
        st.push(h[k]!.set(rows[0]![k]!), h[6 + k]!.set(m.f32x4.neg(rows[1]![k]!)));
        st.push(h[2 + k]!.set(e.vmul(e.vadd(h[k]!.get(), m.f32x4.neg(h[6 + k]!.get())), e.copyExpr(half))));
        st.push(h[4 + k]!.set(e.vmul(e.vadd(h[k]!.get(), h[6 + k]!.get()), e.copyExpr(half))));
      }
      st.push(pt.set(e.add(gb.get(), e.mulc(e.add(e.mulc(o.get(), TV), slot(e.copyExpr(first))), 16))));
      for (let r = 0; r < 4; r++) {
        const [c0, c1] = [h[2 * r]!, h[2 * r + 1]!];
        const at = (k: number) => (4 * r + k) * gStride;
        st.push(e.vstore(pt.get(), c0.get(), at(0)));
        st.push(e.vstore(pt.get(), e.vmul(e.vadd(c0.get(), c1.get()), e.copyExpr(half)), at(1)));
        st.push(e.vstore(pt.get(), e.vmul(e.vsub(c0.get(), c1.get()), e.copyExpr(half)), at(2)));
        st.push(e.vstore(pt.get(), m.f32x4.neg(c1.get()), at(3)));
      }
      return st;
    };
    const grads = e.forc(o, 0, O, 1, gTransform());

    // S[ξ, o, c] over the chunk's cnt tile vectors, 4 output × 2 input channels at a time.
    const gemm = e.forc(xi, 0, 16, 1, [
      e.forc(ob, 0, O, 4, [
        e.forc(cb, 0, C, 2, [
          ...acc.map((x) => x.set(e.vzero())),
          pg.set(e.add(gb.get(), e.add(e.mulc(xi.get(), gStride), e.mulc(ob.get(), 16 * TV)))),
          pv.set(e.add(vb.get(), e.add(e.mulc(xi.get(), vStride), e.mulc(cb.get(), 16 * TV)))),
          e.for(tv, e.i32(0), cnt.get(), 1, [
            ...gv.map((x, q) => x.set(e.vload(pg.get(), 16 * q * TV))),
            ...xv.map((x, q) => x.set(e.vload(pv.get(), 16 * q * TV))),
            ...acc.map((x, k) => x.set(e.madd(gv[k >> 1]!.get(), xv[k & 1]!.get(), x.get()))),
            pg.set(e.addc(pg.get(), 16)),
            pv.set(e.addc(pv.get(), 16)),
          ]),
          ps.set(e.add(e.i32(partials), e.add(e.mulc(chunk.get(), sBytes), e.mulc(e.add(e.mulc(e.add(e.mulc(xi.get(), O), ob.get()), C), cb.get()), 4)))),
          ...acc.map((x, k) => e.storef(ps.get(), e.hsum(x.get(), tmp), 4 * ((k >> 1) * C + (k & 1)))),
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
    const init = [vb.set(c.threadScratch(16 * vStride, tid)), gb.set(c.threadScratch(gStride * 16, tid)), tb.set(c.threadScratch(256, tid)), ...(padded ? [pad.set(c.threadScratch(C * plane, tid))] : [])];
    if (e.T > 1 && chunks >= e.T) return [...init, ...sharedLoop(c, fn, chunk, chunks, chunkWork)];
    return onThread0(e, tid, [...init, e.forc(chunk, 0, chunks, 1, chunkWork)]);
  });

  // dw[o, c] = A^T (Σ_chunks S[·, o, c]) A, threads taking output channels: per (o, 4 input
  // channels) the 16 sums in tb (vectors over c), then the rows of A^T · and the columns of that.
  c.phase((fn, tid) => {
    const [o, cv, xi, k, r, pt, tb, ps] = Array.from({ length: 8 }, () => fn.i32());
    const a = Array.from({ length: 4 }, () => fn.v128());
    const [sum, y0, y1, y2] = [fn.v128(), fn.v128(), fn.v128(), fn.v128()];
    const sp = span(e, fn, tid, O);
    const sums = e.forc(xi, 0, 16, 1, [
      ps.set(e.add(e.i32(partials), e.mulc(e.add(e.mulc(e.add(e.mulc(xi.get(), O), o.get()), C), cv.get()), 4))),
      sum.set(e.vload(ps.get())),
      ...(chunks > 1 ? [e.forc(k, 1, chunks, 1, [ps.set(e.addc(ps.get(), sBytes)), sum.set(e.vadd(sum.get(), e.vload(ps.get())))])] : []),
      e.vstore(e.add(tb.get(), e.mulc(xi.get(), 16)), sum.get()),
    ]);
    // Row a of the 4×4 sums → 3 values (A^T's rows) at tb + 256 + 48·a.
    const rowPass = e.forc(r, 0, 4, 1, [
      pt.set(e.add(tb.get(), e.mulc(r.get(), 64))),
      ...a.map((x, q) => x.set(e.vload(pt.get(), 16 * q))),
      pt.set(e.add(tb.get(), e.addc(e.mulc(r.get(), 48), 256))),
      e.vstore(pt.get(), e.vadd(e.vadd(a[0]!.get(), a[1]!.get()), a[2]!.get()), 0),
      e.vstore(pt.get(), e.vsub(a[1]!.get(), a[2]!.get()), 16),
      e.vstore(pt.get(), e.vadd(e.vadd(a[1]!.get(), a[2]!.get()), a[3]!.get()), 32),
    ]);
    // Column kw → dw[o, c .. c+3, kh, kw] for kh = 0..2 (lanes are input channels, 9 floats apart).
    const colPass = e.forc(k, 0, 3, 1, [
      pt.set(e.add(tb.get(), e.addc(e.mulc(k.get(), 16), 256))),
      ...a.map((x, q) => x.set(e.vload(pt.get(), 48 * q))),
      y0.set(e.vadd(e.vadd(a[0]!.get(), a[1]!.get()), a[2]!.get())),
      y1.set(e.vsub(a[1]!.get(), a[2]!.get())),
      y2.set(e.vadd(e.vadd(a[1]!.get(), a[2]!.get()), a[3]!.get())),
      pt.set(e.add(e.i32(dw), e.mulc(e.add(e.mulc(e.add(e.mulc(o.get(), C), cv.get()), 9), k.get()), 4))),
      ...[y0, y1, y2].flatMap((y, kh) => [0, 1, 2, 3].map((l) => m.v128.store32_lane(4 * (9 * l + 3 * kh), 4, l, pt.get(), y.get()))),
    ]);
    return [...sp.init, tb.set(c.threadScratch(256 + 192, tid)), e.for(o, sp.lo.get(), sp.hi.get(), 1, [e.forc(cv, 0, C, 4, [sums, rowPass, colPass])])];
  });
}
