import { ints, pair } from '../../../ir/op.ts';
import { loadStrided } from '../conv.ts';
import { HIGH_PAIRS, LOW_PAIRS, ZIP_HI, ZIP_LO, type X } from '../emitter.ts';
import { winogradGradWeight, winogradGradWeightFits } from '../winograd-grad-weight.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, span, type KernelCtx } from '../kernel.ts';

/**
 * dw[o, c, kh, kw] = Σ_{n, oh, ow} g[n, o, oh, ow] · x[n, c, oh·sh - ph + kh, ow·sw - pw + kw].
 *
 * 3×3 stride-1 shapes that winogradGradWeightFits go to winogradGradWeight. Otherwise, with a
 * multiple of 4 output channels and at least 16 taps (C·KH·KW) to share each transposed
 * gradient, vectors run over output channels (byOutputChannels); otherwise over output columns,
 * as follows.
 *
 * Tasks are (pair of output channels, input channel) for each group of 4 taps, split across
 * threads (no two threads write the same dw). A task walks its two output-gradient planes and the
 * input plane over all images, 4 output columns at a time, each gradient vector multiplied into
 * the 4 taps' shifted input vectors. Sums run over N·HO·WO terms: each image's partial sums are
 * added into totals, so rounding grows with HO·WO/4 + N terms, not N·HO·WO/4. A padded input is
 * first copied, image by image, into a zero-bordered shared buffer (its own phase, split by image).
 */
export function conv2dGradWeight(c: KernelCtx): void {
  const { e } = c;
  const m = e.m;
  const [N, O, HO, WO] = c.inShape(0) as [number, number, number, number];
  const [, C, H, W] = c.inShape(1) as [number, number, number, number];
  const [, , KH, KW] = ints(c.k.attrs, 'shape') as [number, number, number, number];
  const [sh, sw] = pair(c.k.attrs, 'stride');
  const [ph, pw] = pair(c.k.attrs, 'padding');
  const padded = ph > 0 || pw > 0;
  const Hp = H + 2 * ph;
  const Wp = W + 2 * pw;
  const g = c.inAddr(0);
  const dw = c.outAddr(0);
  const parallel = e.T > 1 && N * O * HO * WO * C * KH * KW >= PARALLEL_MIN;
  if (KH === 3 && KW === 3 && sh === 1 && sw === 1 && Hp === HO + 2 && Wp === WO + 2 && winogradGradWeightFits({ N, O, C, HO, WO })) {
    winogradGradWeight(c, { N, O, C, HO, WO, H, W, ph, pw });
    return;
  }
  let xs = c.inAddr(1);
  if (padded) {
    xs = c.sharedScratch(4 * N * C * Hp * Wp + 64);
    const x = c.inAddr(1);
    c.phase((fn, tid) => {
      const n = fn.i32();
      const r = fn.i32();
      const body = [
        m.memory.fill(e.add(e.i32(xs), e.mulc(n.get(), 4 * C * Hp * Wp)), e.i32(0), e.i32(4 * C * Hp * Wp)),
        // Rows of all channels of image n: row r = c·H + h.
        e.forc(r, 0, C * H, 1, [
          m.memory.copy(
            e.add(e.i32(xs + 4 * (ph * Wp + pw)), e.add(e.mulc(n.get(), 4 * C * Hp * Wp), e.add(e.mulc(m.i32.div_u(r.get(), e.i32(H)), 4 * Hp * Wp), e.mulc(m.i32.rem_u(r.get(), e.i32(H)), 4 * Wp)))),
            e.add(e.i32(x), e.add(e.mulc(n.get(), 4 * C * H * W), e.mulc(r.get(), 4 * W))),
            e.i32(4 * W),
          ),
        ]),
      ];
      if (parallel && N >= e.T) {
        const s = span(e, fn, tid, N);
        return [...s.init, e.for(n, s.lo.get(), s.hi.get(), 1, body)];
      }
      return onThread0(e, tid, [e.forc(n, 0, N, 1, body)]);
    });
  }

  if (O % 4 === 0 && C * KH * KW >= 16) {
    byOutputChannels(c, xs, { N, O, HO, WO, C, KH, KW, sh, sw, Hp, Wp });
    return;
  }
  // Register tile: OB = 2 output channels × TB = 4 taps = 8 accumulators; per 4 output columns
  // it loads 2 gradient vectors and 4 shifted input vectors for 8 multiply-adds (6 loads per 8,
  // all of a block's loads fit in registers next to the accumulators, see tapLoop in conv.ts).
  // Taps go in groups of 4 (row-major), each group a pass over the gradient planes.
  const OB = Math.min(2, O);
  const TB = 4;
  const taps: [number, number][] = [];
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) taps.push([kh, kw]);
  const groups: [number, number][][] = [];
  for (let i = 0; i < taps.length; i += TB) groups.push(taps.slice(i, i + TB));
  const oBlocks = Math.ceil(O / OB);

  c.phase((fn, tid) => {
    const [task, o0, cc, n, oh, ow, pg, px, tp] = Array.from({ length: 9 }, () => fn.i32());
    const gv = Array.from({ length: OB }, () => fn.v128());
    const xv = fn.v128();
    const t = fn.v128();
    const acc = Array.from({ length: OB * TB }, () => fn.v128());
    const W4 = WO - (WO % 4);
    // Per-image sums are added into totals in this thread's scratch (OB·TB vectors).
    const tot = c.threadScratch(16 * OB * TB, tid);

    const group = (gr: [number, number][], ob: number): X[] => {
      const A = (j: number, i: number) => acc[j * TB + i]!;
      const col = (lanes: number): X[] => {
        const st: X[] = [];
        for (let j = 0; j < ob; j++) st.push(gv[j]!.set(e.vloadN(pg.get(), lanes, 4 * j * HO * WO)));
        gr.forEach(([kh, kw], i) => {
          st.push(xv.set(loadStrided(e, px.get(), 4 * (kh * Wp + kw), sw, lanes)));
          for (let j = 0; j < ob; j++) st.push(A(j, i).set(e.madd(gv[j]!.get(), xv.get(), A(j, i).get())));
        });
        st.push(pg.set(e.addc(pg.get(), 16)), px.set(e.addc(px.get(), 16 * sw)));
        return st;
      };
      const row: X[] = [
        pg.set(e.add(e.i32(g), e.add(e.mulc(n.get(), 4 * O * HO * WO), e.add(e.mulc(o0.get(), 4 * HO * WO), e.mulc(oh.get(), 4 * WO))))),
        px.set(e.add(e.i32(xs), e.add(e.mulc(n.get(), 4 * C * Hp * Wp), e.add(e.mulc(cc.get(), 4 * Hp * Wp), e.mulc(oh.get(), 4 * sh * Wp))))),
        e.forc(ow, 0, W4, 4, col(4)),
        ...(WO % 4 ? col(WO % 4) : []),
      ];
      const sums: X[] = [];
      const stores: X[] = [];
      for (let j = 0; j < ob; j++)
        gr.forEach(([kh, kw], i) => {
          const at = 16 * (j * TB + i);
          sums.push(e.vstore(tp.get(), e.vadd(e.vload(tp.get(), at), A(j, i).get()), at));
          stores.push(e.storef(e.add(e.i32(dw), e.mulc(e.add(e.mulc(e.addc(o0.get(), j), C * KH * KW), e.mulc(cc.get(), KH * KW)), 4)), e.hsum(e.vload(tp.get(), at), t), 4 * (kh * KW + kw)));
        });
      return [
        m.memory.fill(tp.get(), e.i32(0), e.i32(16 * OB * TB)),
        e.forc(n, 0, N, 1, [...acc.map((a) => a.set(e.vzero())), e.forc(oh, 0, HO, 1, row), ...sums]),
        ...stores,
      ];
    };
    const body: X[] = [tp.set(tot)];
    for (const gr of groups) {
      // task = o-block·C + c
      const perTask: X[] = [o0.set(e.mulc(m.i32.div_u(task.get(), e.i32(C)), OB)), cc.set(m.i32.rem_u(task.get(), e.i32(C)))];
      if (O % OB) perTask.push(e.if(m.i32.eq(o0.get(), e.i32(O - (O % OB))), group(gr, O % OB), group(gr, OB)));
      else perTask.push(...group(gr, OB));
      if (parallel) {
        body.push(...sharedLoop(c, fn, task, oBlocks * C, perTask));
      } else {
        body.push(...onThread0(e, tid, [e.forc(task, 0, oBlocks * C, 1, perTask)]));
      }
    }
    return body;
  });
}

interface Dims {
  N: number;
  O: number;
  HO: number;
  WO: number;
  C: number;
  KH: number;
  KW: number;
  sh: number;
  sw: number;
  Hp: number;
  Wp: number;
}

/**
 * The weight gradient with vectors over output channels: every lane does useful work whatever
 * the image width (columns in vectors of 4 waste a quarter of LeNet's 10-wide rows, and 25 taps
 * in groups of 4 another 11%). Threads take chunks of images; for each image, the output
 * gradient is transposed to [position, channel] in thread scratch (O·HO·WO floats, L1-sized for
 * small images), then for each input channel and group of taps a register tile of OV channel
 * vectors × TB taps walks the positions: per position OV gradient loads and TB broadcast input loads feed OV·TB multiply-adds
 * (8 accumulators: 4·2, 2·4 or 1·8, the most channel vectors that divide O/4). Each image's
 * sums are added into its chunk's partials ([c, tap, o], O·C·KH·KW floats; a chunk is one image
 * up to 16 MiB of partials), which a second phase adds in chunk order into dw: deterministic
 * whatever the threads, and rounding grows with HO·WO + N terms, as in the column form.
 */
function byOutputChannels(c: KernelCtx, xs: number, d: Dims): void {
  const { e } = c;
  const m = e.m;
  const { N, O, HO, WO, C, KH, KW, sh, sw, Hp, Wp } = d;
  const P = HO * WO;
  const KK = KH * KW;
  const OV = [4, 2, 1].find((v) => (O / 4) % v === 0)!;
  const TB = 8 / OV;
  const oBlocks = O / (4 * OV);
  const groups: [number, number][][] = [];
  for (let i = 0; i < KK; i += TB) groups.push(Array.from({ length: Math.min(TB, KK - i) }, (_, j) => [Math.floor((i + j) / KW), (i + j) % KW] as [number, number]));
  const g = c.inAddr(0);
  const dw = c.outAddr(0);
  // Images go in K fixed chunks, each summed by one thread into its own partials and the chunks
  // added in order after: the same sums in the same order whatever the thread count or timing.
  const totBytes = 4 * O * C * KK;
  const K = Math.min(N, Math.max(1, Math.floor(MAX_PARTIALS / (O * C * KK))));
  const G = Math.ceil(N / K);
  const totals = c.sharedScratch(K * totBytes);

  c.phase((fn, tid) => {
    const [n, p, o, ob, cc, oh, ow, pg, px, gt, tot, chunk] = Array.from({ length: 12 }, () => fn.i32());
    const gv = Array.from({ length: OV }, () => fn.v128());
    const xv = fn.v128();
    const acc = Array.from({ length: OV * TB }, () => fn.v128());
    const rows = Array.from({ length: 4 }, () => fn.v128());
    const mix = Array.from({ length: 4 }, () => fn.v128());
    const pass = (gr: [number, number][]): X[] => {
      const at = (q: number, t: number) => acc[q * TB + t]!;
      const position: X[] = [];
      for (let q = 0; q < OV; q++) position.push(gv[q]!.set(e.vload(pg.get(), 16 * q)));
      gr.forEach(([kh, kw], t) => {
        position.push(xv.set(e.vsplatLoad(px.get(), 4 * (kh * Wp + kw))));
        for (let q = 0; q < OV; q++) position.push(at(q, t).set(e.madd(gv[q]!.get(), xv.get(), at(q, t).get())));
      });
      position.push(pg.set(e.addc(pg.get(), 4 * O)), px.set(e.addc(px.get(), 4 * sw)));
      // totals[(cc·KK + tap)·O + o]: the tile's tap t, channels ob·4·OV + 4q ..
      const tap0 = gr[0]![0] * KW + gr[0]![1];
      const slot = (q: number, t: number) => 4 * ((tap0 + t) * O + 4 * q);
      const base = e.add(tot.get(), e.add(e.mulc(cc.get(), 4 * KK * O), e.mulc(ob.get(), 16 * OV)));
      const sums: X[] = [];
      for (let q = 0; q < OV; q++) for (let t = 0; t < gr.length; t++) sums.push(e.vstore(e.copyExpr(base), e.vadd(e.vload(e.copyExpr(base), slot(q, t)), at(q, t).get()), slot(q, t)));
      return [
        ...acc.map((a) => a.set(e.vzero())),
        pg.set(e.add(gt.get(), e.mulc(ob.get(), 16 * OV))),
        e.forc(oh, 0, HO, 1, [
          px.set(e.add(e.i32(xs), e.add(e.mulc(n.get(), 4 * C * Hp * Wp), e.add(e.mulc(cc.get(), 4 * Hp * Wp), e.mulc(oh.get(), 4 * sh * Wp))))),
          e.forc(ow, 0, WO, 1, position),
        ]),
        ...sums,
      ];
    };
    // gT[p·O + o] = g[n, o, p], in 4×4 blocks (4 rows of g in, 4 columns out by two rounds of
    // interleaving); the last P % 4 positions one float at a time.
    const src = (at: X) => e.add(e.i32(g), e.mulc(e.add(e.mulc(n.get(), O * P), at), 4));
    const dst = (at: X) => e.add(gt.get(), e.mulc(at, 4));
    const P4 = P - (P % 4);
    const block: X[] = [
      ...rows.map((r, i) => r.set(e.vload(src(e.add(e.mulc(o.get(), P), p.get())), 4 * i * P))),
      mix[0]!.set(m.i8x16.shuffle(rows[0]!.get(), rows[1]!.get(), ZIP_LO)),
      mix[1]!.set(m.i8x16.shuffle(rows[0]!.get(), rows[1]!.get(), ZIP_HI)),
      mix[2]!.set(m.i8x16.shuffle(rows[2]!.get(), rows[3]!.get(), ZIP_LO)),
      mix[3]!.set(m.i8x16.shuffle(rows[2]!.get(), rows[3]!.get(), ZIP_HI)),
      ...[0, 1, 2, 3].map((j) => e.vstore(dst(e.add(e.mulc(p.get(), O), o.get())), m.i8x16.shuffle(mix[j >> 1]!.get(), mix[(j >> 1) + 2]!.get(), j & 1 ? HIGH_PAIRS : LOW_PAIRS), 4 * j * O)),
    ];
    const image: X[] = [
      e.forc(o, 0, O, 4, [
        e.forc(p, 0, P4, 4, block),
        ...(P % 4 ? [e.forc(p, P4, P, 1, Array.from({ length: 4 }, (_, i) => e.storef(dst(e.add(e.mulc(p.get(), O), o.get())), e.loadf(src(e.add(e.mulc(o.get(), P), p.get())), 4 * i * P), 4 * i)))] : []),
      ]),
      e.forc(ob, 0, oBlocks, 1, [e.forc(cc, 0, C, 1, groups.flatMap(pass))]),
    ];
    const end = m.select(m.i32.lt_u(e.mulc(e.addc(chunk.get(), 1), G), e.i32(N)), e.mulc(e.addc(chunk.get(), 1), G), e.i32(N));
    return [
      gt.set(c.threadScratch(4 * O * P, tid)),
      ...sharedLoop(c, fn, chunk, K, [
        tot.set(e.add(e.i32(totals), e.mulc(chunk.get(), totBytes))),
        m.memory.fill(tot.get(), e.i32(0), e.i32(totBytes)),
        e.for(n, e.mulc(chunk.get(), G), end, 1, image),
      ]),
    ];
  });

  // dw[o..o+3, c, tap] = Σ_chunks totals[(c·KK + tap)·O + o ..], a vector of 4 channels at a time.
  c.phase((fn, tid) => {
    const [v, k] = [fn.i32(), fn.i32()];
    const sum = fn.v128();
    const s = span(e, fn, tid, (O * C * KK) / 4);
    // Vector v holds channels 4v mod O of (c, tap) = ⌊4v / O⌋; channel o goes to dw[o·C·KK + (c, tap)].
    const at = e.add(e.i32(dw), e.mulc(e.add(e.mulc(m.i32.rem_u(e.mulc(v.get(), 4), e.i32(O)), C * KK), m.i32.div_u(e.mulc(v.get(), 4), e.i32(O))), 4));
    return [
      ...s.init,
      e.for(v, s.lo.get(), s.hi.get(), 1, [
        sum.set(e.vzero()),
        e.forc(k, 0, K, 1, [sum.set(e.vadd(sum.get(), e.vload(e.add(e.i32(totals), e.add(e.mulc(k.get(), totBytes), e.mulc(v.get(), 16))))))]),
        ...[0, 1, 2, 3].map((l) => e.storef(e.copyExpr(at), m.f32x4.extract_lane(sum.get(), l), 4 * l * C * KK)),
      ]),
    ];
  });
}

/** Floats of per-chunk partial sums the channel form may use (16 MiB): at most one chunk per image. */
const MAX_PARTIALS = 1 << 22;
