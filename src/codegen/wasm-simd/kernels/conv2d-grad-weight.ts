import { ints, pair } from '../../../ir/op.ts';
import { loadStrided } from '../conv.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, span, onThread0, type KernelCtx } from '../kernel.ts';

/**
 * dw[o, c, kh, kw] = Σ_{n, oh, ow} g[n, o, oh, ow] · x[n, c, oh·sh - ph + kh, ow·sw - pw + kw].
 *
 * One task per (o, c) pair, tasks split across threads (no two threads write the same dw). A
 * task keeps one accumulator vector per tap (up to 9 taps at a time: 3×3 is 9 registers, 5×5 is
 * done in groups of 9, 9, 7) and walks its output-gradient plane once per group, 4 columns at a
 * time: each vector of g is loaded once and multiplied into every tap's shifted vector of x, so
 * g, the big operand, streams through exactly once for 3×3. Sums run over N·HO·WO terms (43k for
 * SimpleCNN): each image's partial sums are added into a second set of vectors, so rounding grows
 * with HO·WO/4 + N terms, not N·HO·WO/4. A padded input is first copied, image by image, into a
 * zero-bordered shared buffer (its own phase, split by image).
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

  // Taps in groups of at most 9 (row-major).
  const taps: [number, number][] = [];
  for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) taps.push([kh, kw]);
  const groups: [number, number][][] = [];
  for (let i = 0; i < taps.length; i += 9) groups.push(taps.slice(i, i + 9));

  c.phase((fn, tid) => {
    const task = fn.i32();
    const o = fn.i32();
    const cc = fn.i32();
    const n = fn.i32();
    const oh = fn.i32();
    const ow = fn.i32();
    const pg = fn.i32();
    const px = fn.i32();
    const gv = fn.v128();
    const xv = fn.v128();
    const t = fn.v128();
    const G = Math.max(...groups.map((gr) => gr.length));
    const acc = Array.from({ length: G }, () => fn.v128());
    const tot = Array.from({ length: G }, () => fn.v128());
    const W4 = WO - (WO % 4);

    const group = (gr: [number, number][]): X[] => {
      const col = (lanes: number): X[] => {
        const s: X[] = [gv.set(e.vloadN(pg.get(), lanes))];
        gr.forEach(([kh, kw], i) => {
          s.push(xv.set(loadStrided(e, px.get(), 4 * (kh * Wp + kw), sw, lanes)));
          s.push(acc[i]!.set(e.madd(gv.get(), xv.get(), acc[i]!.get())));
        });
        s.push(pg.set(e.addc(pg.get(), 16)), px.set(e.addc(px.get(), 16 * sw)));
        return s;
      };
      const row: X[] = [
        pg.set(e.add(e.i32(g), e.add(e.mulc(n.get(), 4 * O * HO * WO), e.add(e.mulc(o.get(), 4 * HO * WO), e.mulc(oh.get(), 4 * WO))))),
        px.set(e.add(e.i32(xs), e.add(e.mulc(n.get(), 4 * C * Hp * Wp), e.add(e.mulc(cc.get(), 4 * Hp * Wp), e.mulc(oh.get(), 4 * sh * Wp))))),
        e.forc(ow, 0, W4, 4, col(4)),
        ...(WO % 4 ? col(WO % 4) : []),
      ];
      const image: X[] = [...gr.map((_, i) => acc[i]!.set(e.vzero())), e.forc(oh, 0, HO, 1, row), ...gr.map((_, i) => tot[i]!.set(e.vadd(tot[i]!.get(), acc[i]!.get())))];
      return [
        ...gr.map((_, i) => tot[i]!.set(e.vzero())),
        e.forc(n, 0, N, 1, image),
        ...gr.map(([kh, kw], i) => e.storef(e.add(e.i32(dw), e.mulc(e.add(e.mulc(o.get(), C * KH * KW), e.mulc(cc.get(), KH * KW)), 4)), e.hsum(tot[i]!.get(), t), 4 * (kh * KW + kw))),
      ];
    };
    const perTask: X[] = [o.set(m.i32.div_u(task.get(), e.i32(C))), cc.set(m.i32.rem_u(task.get(), e.i32(C))), ...groups.flatMap(group)];
    if (parallel) {
      const s = span(e, fn, tid, O * C);
      return [...s.init, e.for(task, s.lo.get(), s.hi.get(), 1, perTask)];
    }
    return onThread0(e, tid, [e.forc(task, 0, O * C, 1, perTask)]);
  });
}
