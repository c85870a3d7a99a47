import { ints, pair } from '../../ir/op.ts';
import { convImage, loadStrided, padImage, type ConvImage } from './conv.ts';
import { ZIP_HI, ZIP_LO, type Emitter, type Fn, type Local, type X } from './emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, type KernelCtx } from './kernel.ts';

/**
 * A stride-2 convolution as stride-1 ones over phase images (space to depth): with xp the padded
 * input, X'_f[c][i][j] = xp[c][2i + p][2j + q] for each phase f = (p, q) that some tap reads, and
 * W'_f[o][c][a][b] = w[o][c][2a + p][2b + q], its own sub-kernel (2×2, 2×1, 1×2 and 1×1 for a
 * 3×3 kernel), the convolution is Σ_f conv(X'_f, W'_f) with stride 1 and no padding. Its input
 * gradient is each class's stride-1 input gradient into X'_f, scattered back (each padded
 * position is in exactly one phase). Direct stride-2 kernels read every other column (a shuffle
 * per vector) and their input gradient multiplies a gradient spread out with zeros (4× the
 * work); here every kernel runs at stride 1 on the 9 real taps of a 3×3 kernel. Images are split,
 * convolved and scattered one at a time in thread scratch.
 */
export interface Phases {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  KH: number;
  KW: number;
  ph: number;
  pw: number;
  HO: number;
  WO: number;
  /** Phase rows and columns present: min(2, KH), min(2, KW). */
  PR: number;
  PC: number;
  /** Phases F = PR·PC; sub-kernel KH2 × KW2; phase images Hq × Wq. */
  F: number;
  KH2: number;
  KW2: number;
  Hq: number;
  Wq: number;
  /** Sub-kernel of phase f = (p, q) = (⌊f / PC⌋, f mod PC): ⌈(KH - p) / 2⌉ × ⌈(KW - q) / 2⌉ taps. */
  classes: { KH: number; KW: number }[];
}

/** The phase split of a conv2d (or gradient) kernel with stride 2, or undefined for other strides. */
export function phasesOf(c: KernelCtx, x: readonly number[], w: readonly number[], y: readonly number[]): Phases | undefined {
  const [sh, sw] = pair(c.k.attrs, 'stride');
  if (sh !== 2 || sw !== 2) return undefined;
  const [ph, pw] = pair(c.k.attrs, 'padding');
  const [N, C, H, W] = x as [number, number, number, number];
  const [O, , KH, KW] = w as [number, number, number, number];
  const [, , HO, WO] = y as [number, number, number, number];
  const PR = Math.min(2, KH);
  const PC = Math.min(2, KW);
  const KH2 = Math.ceil(KH / 2);
  const KW2 = Math.ceil(KW / 2);
  const classes = Array.from({ length: PR * PC }, (_, f) => ({ KH: Math.ceil((KH - Math.floor(f / PC)) / 2), KW: Math.ceil((KW - (f % PC)) / 2) }));
  return { N, C, H, W, O, KH, KW, ph, pw, HO, WO, PR, PC, F: PR * PC, KH2, KW2, Hq: HO + KH2 - 1, Wq: WO + KW2 - 1, classes };
}

/**
 * Image n of x split into its phase images at `dst` [F, C, Hq, Wq] (phase-major: each class's
 * planes together), by way of the zero-padded image at `pad` (padSize bytes of thread scratch).
 */
function splitImage(e: Emitter, fn: Fn, d: Phases, x: number, n: Local, pad: Local, dst: Local): X[] {
  const m = e.m;
  const { C, H, W, ph, pw, F, PC, Hq, Wq } = d;
  const { Hp, Wp } = padSize(d);
  const [r, row, src, at, cc, f, i, j] = Array.from({ length: 8 }, () => fn.i32());
  const v = fn.v128();
  const W4 = Wq - (Wq % 4);
  // Row i of phase f = (p, q) of channel cc: padded row 2i + p from column q, every other column.
  const split = e.forc(f, 0, F, 1, [
    e.forc(cc, 0, C, 1, [
      e.forc(i, 0, Hq, 1, [
        src.set(e.add(pad.get(), e.mulc(e.add(e.mulc(cc.get(), Hp), e.add(e.mulc(i.get(), 2), m.i32.div_u(f.get(), e.i32(PC)))), 4 * Wp))),
        src.set(e.add(src.get(), e.mulc(m.i32.rem_u(f.get(), e.i32(PC)), 4))),
        at.set(e.add(dst.get(), e.mulc(e.add(e.mulc(e.add(e.mulc(f.get(), C), cc.get()), Hq), i.get()), 4 * Wq))),
        e.forc(j, 0, W4, 4, [v.set(loadStrided(e, e.add(src.get(), e.mulc(j.get(), 8)), 0, 2)), e.vstore(e.add(at.get(), e.mulc(j.get(), 4)), v.get())]),
        ...(Wq % 4 ? [v.set(loadStrided(e, e.addc(src.get(), 8 * W4), 0, 2)), e.vstoreN(e.addc(at.get(), 4 * W4), v.get(), Wq % 4)] : []),
      ]),
    ]),
  ]);
  return [
    m.memory.fill(pad.get(), e.i32(0), e.i32(4 * C * Hp * Wp)),
    // Row r = c·H + h of the image into the padded plane.
    e.forc(r, 0, C * H, 1, [
      row.set(e.add(e.mulc(m.i32.div_u(r.get(), e.i32(H)), Hp), e.addc(m.i32.rem_u(r.get(), e.i32(H)), ph))),
      m.memory.copy(e.add(pad.get(), e.addc(e.mulc(row.get(), 4 * Wp), 4 * pw)), e.add(e.i32(x), e.add(e.mulc(n.get(), 4 * C * H * W), e.mulc(r.get(), 4 * W))), e.i32(4 * W)),
    ]),
    split,
  ];
}

/** The padded image splitImage reads: tall and wide enough that every phase row and column read lies inside it. */
function padSize(d: Phases): { Hp: number; Wp: number } {
  return { Hp: Math.max(d.H + 2 * d.ph, 2 * d.Hq + 1), Wp: Math.max(d.W + 2 * d.pw, 2 * d.Wq + 8) };
}

/**
 * Each class's sub-kernel in shared scratch, written by thread 0 in its own phase (tiny); returns
 * their addresses. For the forward W'_f [O, C, KH_f, KW_f] = w[o, c, 2a + p, 2b + q]; `flipped`,
 * for the input gradient, W'_f transposed and flipped: [C, O, KH_f, KW_f] at (c, o, KH_f-1-a, KW_f-1-b).
 */
function classWeights(c: KernelCtx, d: Phases, w: number, flipped: boolean): number[] {
  const { e } = c;
  const { O, C, KH, KW, PC } = d;
  const sizes = d.classes.map((k) => 4 * O * C * k.KH * k.KW);
  const base = c.sharedScratch(sizes.reduce((a, b) => a + b, 0));
  const addrs = sizes.map((_, f) => base + sizes.slice(0, f).reduce((a, b) => a + b, 0));
  c.phase((fn, tid) => {
    const [o, cc] = [fn.i32(), fn.i32()];
    const st: X[] = [];
    d.classes.forEach((k, f) => {
      const [p, q] = [Math.floor(f / PC), f % PC];
      const pair = flipped ? e.add(e.mulc(cc.get(), O), o.get()) : e.add(e.mulc(o.get(), C), cc.get());
      for (let a = 0; a < k.KH; a++)
        for (let b = 0; b < k.KW; b++) {
          const [ta, tb] = flipped ? [k.KH - 1 - a, k.KW - 1 - b] : [a, b];
          const from = e.add(e.i32(w), e.mulc(e.addc(e.mulc(e.add(e.mulc(o.get(), C), cc.get()), KH * KW), (2 * ta + p) * KW + 2 * tb + q), 4));
          st.push(e.storef(e.add(e.i32(addrs[f]!), e.mulc(e.addc(e.mulc(e.copyExpr(pair), k.KH * k.KW), a * k.KW + b), 4)), e.loadf(from)));
        }
    });
    return onThread0(e, tid, [e.forc(o, 0, O, 1, [e.forc(cc, 0, C, 1, st)])]);
  });
  return addrs;
}

/**
 * The part of each class's phase image that dx reads: rows [r0, r0 + rows) and columns [c0, c0 +
 * cols), the phase positions 2i + p, 2j + q inside the padding (and inside Hq × Wq); `at`, its
 * offset in floats in dX' [class][C][rows][cols] of an image.
 */
interface ClassRegion {
  r0: number;
  rows: number;
  c0: number;
  cols: number;
  at: number;
}

function classRegions(d: Phases): ClassRegion[] {
  const span = (lead: number, size: number, phase: number, limit: number) => {
    const lo = Math.max(0, Math.ceil((lead - phase) / 2));
    const hi = Math.min(limit - 1, Math.floor((lead + size - 1 - phase) / 2));
    return [lo, Math.max(0, hi - lo + 1)] as const;
  };
  let at = 0;
  return d.classes.map((_, f) => {
    const [r0, rows] = span(d.ph, d.H, Math.floor(f / d.PC), d.Hq);
    const [c0, cols] = span(d.pw, d.W, f % d.PC, d.Wq);
    const r = { r0, rows, c0, cols, at };
    at += d.C * rows * cols;
    return r;
  });
}

/**
 * dx of image n from its classes' regions at `src` (classRegions): row ih of a plane is phase row
 * p = (ih + ph) mod 2, i = ⌊(ih + ph) / 2⌋, its columns interleaved from phases (p, 0) and (p, 1)
 * (zeros for a phase no tap reads) into `tmp` (tmpBytes of thread scratch) from padded column 0,
 * and copied from column pw. Each class row is read from its phase column 0 on, ahead of its
 * region: the columns that land outside [pw, pw + W) are never copied.
 */
function scatterImage(e: Emitter, fn: Fn, d: Phases, src: Local, n: Local, dx: number, tmp: Local): X[] {
  const m = e.m;
  const { C, H, W, ph, pw, PR, PC, Wq } = d;
  const regions = classRegions(d);
  const [cc, ih, i, row0, row1, j, to] = Array.from({ length: 7 }, () => fn.i32());
  const [r0, r1] = [fn.v128(), fn.v128()];
  const rowOf = (f: number): X => {
    const g = regions[f]!;
    return e.add(src.get(), e.addc(e.mulc(e.add(e.mulc(cc.get(), g.rows), e.addc(i.get(), -g.r0)), 4 * g.cols), 4 * (g.at - g.c0)));
  };
  const fill = m.memory.fill(to.get(), e.i32(0), e.i32(4 * W));
  const zip = (p: number): X => {
    const g = regions[p * PC]!;
    const pairs = [
      row0.set(rowOf(p * PC)),
      ...(PC > 1 ? [row1.set(rowOf(p * PC + 1))] : []),
      // Columns 4j .. 4j+3 of both phase rows → 8 columns of tmp.
      e.forc(j, 0, 4 * Math.ceil(Wq / 4), 4, [
        r0.set(e.vload(e.add(row0.get(), e.mulc(j.get(), 4)))),
        r1.set(PC > 1 ? e.vload(e.add(row1.get(), e.mulc(j.get(), 4))) : e.vzero()),
        e.vstore(e.add(tmp.get(), e.mulc(j.get(), 8)), m.i8x16.shuffle(r0.get(), r1.get(), ZIP_LO)),
        e.vstore(e.add(tmp.get(), e.mulc(j.get(), 8)), m.i8x16.shuffle(r0.get(), r1.get(), ZIP_HI), 16),
      ]),
      m.memory.copy(to.get(), e.addc(tmp.get(), 4 * pw), e.i32(4 * W)),
    ];
    // A phase row outside the region (past Hq) holds no gradient.
    return e.if(m.i32.lt_u(e.addc(i.get(), -g.r0), e.i32(g.rows)), pairs, [e.copyExpr(fill)]);
  };
  return [
    e.forc(cc, 0, C, 1, [
      e.forc(ih, 0, H, 1, [
        to.set(e.add(e.i32(dx), e.mulc(e.add(e.mulc(e.add(e.mulc(n.get(), C), cc.get()), H), ih.get()), 4 * W))),
        i.set(m.i32.shr_u(e.addc(ih.get(), ph), e.i32(1))),
        // Odd padded rows: phase row 1, or none for a 1-row kernel.
        e.if(m.i32.and(e.addc(ih.get(), ph), e.i32(1)), [PR > 1 ? zip(1) : fill], [zip(0)]),
      ]),
    ]),
  ];
}

/** Thread scratch for scatterImage's interleaved row: 2·4⌈Wq/4⌉ columns and slack. */
const tmpBytes = (d: Phases) => 4 * 8 * Math.ceil(d.Wq / 4) + 64;

/** Runs `perImage` for every image: shared out between threads when the work is worth it. */
function eachImage(c: KernelCtx, fn: Fn, tid: Local, n: Local, d: Phases, init: X[], perImage: X[]): X[] {
  const { e } = c;
  if (e.T > 1 && d.N >= e.T && d.N * d.O * d.HO * d.WO * d.C * d.KH * d.KW >= PARALLEL_MIN) return [...init, ...sharedLoop(c, fn, n, d.N, perImage)];
  return onThread0(e, tid, [...init, e.forc(n, 0, d.N, 1, perImage)]);
}

/**
 * The stride-2 forward, image by image in thread scratch: the phase images, then one stride-1
 * convolution whose taps run in a group per class (convImage's groups), each with its own
 * sub-kernel: 9 taps of a 3×3 kernel, none of the zeros a common 2×2 sub-kernel would hold.
 */
export function conv2dByPhases(c: KernelCtx, d: Phases): void {
  const { e } = c;
  const { C, O, F, HO, WO, Hq, Wq } = d;
  const ws = classWeights(c, d, c.inAddr(1), false);
  const bias = c.k.inputs.length > 2 ? c.inAddr(2) : undefined;
  const y = c.outAddr(0);
  const { Hp, Wp } = padSize(d);
  const groups = d.classes.map((k, f) => ({ x: 4 * f * C * Hq * Wq, w: ws[f]!, C, KH: k.KH, KW: k.KW }));
  c.phase((fn, tid) => {
    const [n, pad, img, out] = [fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    const p: ConvImage = { C: F * C, Hp: Hq, Wp: Wq, O, KH: d.KH2, KW: d.KW2, sh: 1, sw: 1, HO, WO, w: 0, bias, groups };
    const init = [pad.set(c.threadScratch(4 * C * Hp * Wp + 64, tid)), img.set(c.threadScratch(4 * F * C * Hq * Wq + 64, tid))];
    const perImage = [...splitImage(e, fn, d, c.inAddr(0), n, pad, img), out.set(e.add(e.i32(y), e.mulc(n.get(), 4 * O * HO * WO))), ...convImage(e, fn, p, img, out)];
    return eachImage(c, fn, tid, n, d, init, perImage);
  });
}

/**
 * The stride-2 input gradient, image by image in thread scratch: g bordered by the sub-kernel's
 * size less one (Gs), each class's phase images dX'_f as the stride-1 input gradient of its own
 * sub-kernel (a plain convolution of Gs with the flipped weights, from row KH2 - KH_f and column
 * KW2 - KW_f of Gs: a smaller sub-kernel reads only Gs's border for the row or column it never
 * touches), then scattered into dx. No gradient spread out with zeros, no zero taps.
 */
export function conv2dGradInputByPhases(c: KernelCtx, d: Phases): void {
  const { e } = c;
  const { C, O, HO, WO, Wq, KH2, KW2 } = d;
  const ws = classWeights(c, d, c.inAddr(1), true);
  const [Hs, Ws] = [HO + 2 * (KH2 - 1), WO + 2 * (KW2 - 1)];
  c.phase((fn, tid) => {
    const [n, gs, at, dxs, out, tmp] = Array.from({ length: 6 }, () => fn.i32());
    const regions = classRegions(d);
    const floats = regions.reduce((a, g) => a + C * g.rows * g.cols, 0);
    // The scatter reads each class row from its phase column 0 (up to 4 floats ahead of the
    // region) to ⌈Wq/4⌉ vectors on: slack on both sides.
    const slack = 16 + 4 * 4 * Math.ceil(Wq / 4);
    const init = [
      gs.set(c.threadScratch(4 * O * Hs * Ws + 64, tid)),
      dxs.set(e.addc(c.threadScratch(4 * floats + 2 * slack, tid), slack)),
      tmp.set(c.threadScratch(tmpBytes(d), tid)),
      e.m.memory.fill(tmp.get(), e.i32(0), e.i32(tmpBytes(d))),
    ];
    // Each class's region of its phase image only: the outputs dx reads, none past them.
    const classes = d.classes.flatMap((k, f) => {
      const g = regions[f]!;
      if (g.rows === 0 || g.cols === 0) return [];
      return [
        at.set(e.addc(gs.get(), 4 * ((KH2 - k.KH + g.r0) * Ws + (KW2 - k.KW + g.c0)))),
        out.set(e.addc(dxs.get(), 4 * g.at)),
        ...convImage(e, fn, { C: O, Hp: Hs, Wp: Ws, O: C, KH: k.KH, KW: k.KW, sh: 1, sw: 1, HO: g.rows, WO: g.cols, w: ws[f]! }, at, out),
      ];
    });
    const perImage = [...padImage(e, fn, gs, c.inAddr(0), n, O, HO, WO, KH2 - 1, KW2 - 1), ...classes, ...scatterImage(e, fn, d, dxs, n, c.outAddr(0), tmp)];
    return eachImage(c, fn, tid, n, d, init, perImage);
  });
}

/** The x, w and y shapes of a conv2d_grad_input kernel: g [N, O, HO, WO], w, attrs.shape = x. */
export function gradInputShapes(c: KernelCtx): [readonly number[], readonly number[], readonly number[]] {
  return [ints(c.k.attrs, 'shape'), c.inShape(1), c.inShape(0)];
}
