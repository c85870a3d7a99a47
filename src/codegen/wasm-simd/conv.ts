import type { Emitter, Fn, Local, X } from './emitter.ts';

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
 * Direct convolution of one image, vectorised along output columns. Register tile: 2 output rows
 * × 4 output channels = 8 accumulators; each tap loads 2 input vectors and splats 4 weights, so
 * 8 multiply-adds cost 6 loads, and the 8 independent chains cover the multiply-add latency
 * (4 cycles, 2 per cycle). Measured against 1 row × 8 channels (9 loads per 8, slower) and
 * 1 × 4 (5 per 4). Taps are unrolled; channels too while C·KH·KW ≤ 36, else a loop over c.
 * Edges: a last odd row, a last block of fewer channels, a last vector of fewer columns (its
 * lanes are computed from whatever lies past the row, and not stored).
 */
export function convImage(e: Emitter, fn: Fn, p: ConvImage, x: Local, out: Local): X[] {
  const OB = Math.min(4, p.O);
  const R = p.HO >= 2 ? 2 : 1;
  const taps = p.KH * p.KW;
  const unrollC = p.C * taps <= 36;
  const o0 = fn.i32();
  const oh = fn.i32();
  const ow = fn.i32();
  const c = fn.i32();
  const prow = fn.i32();
  const pw = fn.i32();
  const pwc = fn.i32();
  const acc = Array.from({ length: R * OB }, () => fn.v128());
  const xv = Array.from({ length: R }, () => fn.v128());
  const s = fn.v128();
  const wBase = typeof p.w === 'number' ? e.i32(p.w) : p.w.get();
  const plane = 4 * p.Hp * p.Wp;
  const wPerO = p.C * taps;

  const tile = (ob: number, r: number, lanes: number): X[] => {
    const st: X[] = [];
    for (let rr = 0; rr < r; rr++)
      for (let j = 0; j < ob; j++) st.push(acc[rr * OB + j]!.set(p.bias === undefined ? e.vzero() : e.vsplatLoad(e.add(e.i32(p.bias), e.mulc(o0.get(), 4)), 4 * j)));
    // prow: x at (channel c, row oh·sh, column ow·sw); pwc: w at (o0, c).
    const chan = (cOff: number, xBase: X, wb: X): X[] => {
      const t: X[] = [];
      for (let kh = 0; kh < p.KH; kh++)
        for (let kw = 0; kw < p.KW; kw++) {
          for (let rr = 0; rr < r; rr++) t.push(xv[rr]!.set(loadStrided(e, e.copyExpr(xBase), cOff * plane + 4 * ((rr * p.sh + kh) * p.Wp + kw), p.sw)));
          for (let j = 0; j < ob; j++) {
            t.push(s.set(e.vsplatLoad(e.copyExpr(wb), 4 * (j * wPerO + cOff * taps + kh * p.KW + kw))));
            for (let rr = 0; rr < r; rr++) t.push(acc[rr * OB + j]!.set(e.madd(xv[rr]!.get(), s.get(), acc[rr * OB + j]!.get())));
          }
        }
      return t;
    };
    st.push(prow.set(e.add(x.get(), e.add(e.mulc(oh.get(), 4 * p.sh * p.Wp), e.mulc(ow.get(), 4 * p.sw)))));
    if (unrollC) {
      for (let cc = 0; cc < p.C; cc++) st.push(...chan(cc, prow.get(), pw.get()));
    } else {
      st.push(pwc.set(pw.get()));
      st.push(e.forc(c, 0, p.C, 1, [...chan(0, prow.get(), pwc.get()), prow.set(e.addc(prow.get(), plane)), pwc.set(e.addc(pwc.get(), 4 * taps))]));
    }
    const pout = e.add(out.get(), e.add(e.mulc(o0.get(), 4 * p.HO * p.WO), e.add(e.mulc(oh.get(), 4 * p.WO), e.mulc(ow.get(), 4))));
    const po = fn.i32();
    st.push(po.set(pout));
    for (let rr = 0; rr < r; rr++) for (let j = 0; j < ob; j++) st.push(e.vstoreN(po.get(), acc[rr * OB + j]!.get(), lanes, 4 * (j * p.HO * p.WO + rr * p.WO)));
    return st;
  };

  const W4 = p.WO - (p.WO % 4);
  const cols = (ob: number, r: number): X[] => [e.forc(ow, 0, W4, 4, tile(ob, r, 4)), ...(p.WO % 4 ? [ow.set(e.i32(W4)), ...tile(ob, r, p.WO % 4)] : [])];
  const HR = p.HO - (p.HO % R);
  const rows = (ob: number): X[] => [e.forc(oh, 0, HR, R, cols(ob, R)), ...(p.HO % R ? [oh.set(e.i32(HR)), ...cols(ob, 1)] : [])];
  const OF = p.O - (p.O % OB);
  const setW = pw.set(e.add(wBase, e.mulc(o0.get(), 4 * wPerO)));
  return [
    e.forc(o0, 0, OF, OB, [setW, ...rows(OB)]),
    ...(p.O % OB ? [o0.set(e.i32(OF)), pw.set(e.add(e.copyExpr(wBase), e.mulc(o0.get(), 4 * wPerO))), ...rows(p.O % OB)] : []),
  ];
}
