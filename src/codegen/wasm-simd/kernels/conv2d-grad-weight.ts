import { ints, pair } from '../../../ir/op.ts';
import { loadStrided } from '../conv.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, span, type KernelCtx } from '../kernel.ts';

/**
 * dw[o, c, kh, kw] = Σ_{n, oh, ow} g[n, o, oh, ow] · x[n, c, oh·sh - ph + kh, ow·sw - pw + kw].
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
