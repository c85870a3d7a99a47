import { ints, pair } from '../../ir/op.ts';
import { loadStrided } from './conv.ts';
import { ZIP_HI, ZIP_LO, type X } from './emitter.ts';
import { derive, onThread0, span, type At, type KernelCtx } from './kernel.ts';

/**
 * A stride-2 convolution as a stride-1 one over phase images (space to depth): with xp the padded
 * input, X'[c·F + f][i][j] = xp[c][2i + p][2j + q] for each phase f = (p, q) that some tap reads,
 * and W'[o][c·F + f][a][b] = w[o][c][2a + p][2b + q] (0 where that tap is past the kernel), the
 * convolution is conv(X', W') with stride 1, no padding and a ⌈K/2⌉ kernel. Its input gradient
 * is the stride-1 input gradient into X' scattered back (each padded position is in exactly one
 * phase). Direct stride-2 kernels read every other column (a shuffle per vector) and their input
 * gradient multiplies a gradient spread out with zeros (4× the work); here every kernel runs at
 * stride 1, at the price of the zero taps (16 for 9 on a 3×3 kernel).
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
  return { N, C, H, W, O, KH, KW, ph, pw, HO, WO, PR, PC, F: PR * PC, KH2, KW2, Hq: HO + KH2 - 1, Wq: WO + KW2 - 1 };
}

/** X' of every image, in shared scratch [N, C·F, Hq, Wq]: threads take images. */
export function splitInput(c: KernelCtx, d: Phases, x: number): At {
  const { e } = c;
  const m = e.m;
  const { N, C, H, W, ph, pw, F, PC, Hq, Wq } = d;
  // The padded image, wide and tall enough that every phase row and column read lies inside it.
  const Hp = Math.max(H + 2 * ph, 2 * Hq + 1);
  const Wp = Math.max(W + 2 * pw, 2 * Wq + 8);
  const out: At = { addr: c.sharedScratch(4 * N * C * F * Hq * Wq + 64), shape: [N, C * F, Hq, Wq] };
  c.phase((fn, tid) => {
    const [n, r, pad, row, src, dst, cc, f, i, j] = Array.from({ length: 10 }, () => fn.i32());
    const v = fn.v128();
    const W4 = Wq - (Wq % 4);
    // Row i of phase f = (p, q) of channel cc: padded row 2i + p from column q, every other column.
    const split = e.forc(cc, 0, C, 1, [
      e.forc(f, 0, F, 1, [
        e.forc(i, 0, Hq, 1, [
          src.set(e.add(pad.get(), e.mulc(e.add(e.mulc(cc.get(), Hp), e.add(e.mulc(i.get(), 2), m.i32.div_u(f.get(), e.i32(PC)))), 4 * Wp))),
          src.set(e.add(src.get(), e.mulc(m.i32.rem_u(f.get(), e.i32(PC)), 4))),
          dst.set(e.add(e.i32(out.addr), e.mulc(e.add(e.mulc(e.add(e.mulc(e.add(e.mulc(n.get(), C), cc.get()), F), f.get()), Hq), i.get()), 4 * Wq))),
          e.forc(j, 0, W4, 4, [v.set(loadStrided(e, e.add(src.get(), e.mulc(j.get(), 8)), 0, 2)), e.vstore(e.add(dst.get(), e.mulc(j.get(), 4)), v.get())]),
          ...(Wq % 4 ? [v.set(loadStrided(e, e.addc(src.get(), 8 * W4), 0, 2)), e.vstoreN(e.addc(dst.get(), 4 * W4), v.get(), Wq % 4)] : []),
        ]),
      ]),
    ]);
    const body = [
      m.memory.fill(pad.get(), e.i32(0), e.i32(4 * C * Hp * Wp)),
      // Row r = c·H + h of the image into the padded plane.
      e.forc(r, 0, C * H, 1, [
        row.set(e.add(e.mulc(m.i32.div_u(r.get(), e.i32(H)), Hp), e.addc(m.i32.rem_u(r.get(), e.i32(H)), ph))),
        m.memory.copy(e.add(pad.get(), e.addc(e.mulc(row.get(), 4 * Wp), 4 * pw)), e.add(e.i32(x), e.add(e.mulc(n.get(), 4 * C * H * W), e.mulc(r.get(), 4 * W))), e.i32(4 * W)),
      ]),
      split,
    ];
    const init = pad.set(c.threadScratch(4 * C * Hp * Wp, tid));
    if (e.T > 1 && N >= e.T) {
      const s = span(e, fn, tid, N);
      return [init, ...s.init, e.for(n, s.lo.get(), s.hi.get(), 1, body)];
    }
    return onThread0(e, tid, [init, e.forc(n, 0, N, 1, body)]);
  });
  return out;
}

/** W' [O, C·F, KH2, KW2] in shared scratch, written by thread 0 in its own phase (tiny). */
export function splitWeights(c: KernelCtx, d: Phases, w: number): At {
  const { e } = c;
  const { O, C, KH, KW, F, PC, KH2, KW2 } = d;
  const out: At = { addr: c.sharedScratch(4 * O * C * F * KH2 * KW2), shape: [O, C * F, KH2, KW2] };
  c.phase((fn, tid) => {
    const [o, cc] = [fn.i32(), fn.i32()];
    const st: X[] = [];
    for (let f = 0; f < F; f++)
      for (let a = 0; a < KH2; a++)
        for (let b = 0; b < KW2; b++) {
          const [kh, kw] = [2 * a + Math.floor(f / PC), 2 * b + (f % PC)];
          const at = e.add(e.i32(out.addr), e.mulc(e.addc(e.mulc(e.add(e.mulc(o.get(), C), cc.get()), F * KH2 * KW2), (f * KH2 + a) * KW2 + b), 4));
          const v = kh < KH && kw < KW ? e.loadf(e.add(e.i32(w), e.mulc(e.addc(e.mulc(e.add(e.mulc(o.get(), C), cc.get()), KH * KW), kh * KW + kw), 4))) : e.f32(0);
          st.push(e.storef(at, v));
        }
    return onThread0(e, tid, [e.forc(o, 0, O, 1, [e.forc(cc, 0, C, 1, st)])]);
  });
  return out;
}

/**
 * dx from dX' [N, C·F, Hq, Wq]: row ih of a plane is phase row p = (ih + ph) mod 2, i = ⌊(ih + ph)
 * / 2⌋, its columns interleaved from phases (p, 0) and (p, 1) (zeros for a phase no tap reads),
 * built in thread scratch from column 0 of the padded row and copied from column pw. Threads take
 * planes.
 */
export function scatterInput(c: KernelCtx, d: Phases, dxs: At, dx: number): void {
  const { e } = c;
  const m = e.m;
  const { N, C, H, W, ph, pw, F, PR, PC, Hq, Wq } = d;
  const V = Math.ceil(Wq / 4);
  c.phase((fn, tid) => {
    const [pl, ih, p, i, tmp, src, j] = Array.from({ length: 7 }, () => fn.i32());
    const [r0, r1] = [fn.v128(), fn.v128()];
    const phaseRow = (q: number) => e.add(e.i32(dxs.addr), e.mulc(e.add(e.mulc(e.add(e.mulc(pl.get(), F), e.addc(e.mulc(p.get(), PC), q)), Hq), i.get()), 4 * Wq));
    const W4 = Wq - (Wq % 4);
    // Columns 4j .. 4j+3 of both phase rows (the first `lanes`, the rest zero) → 8 columns of tmp.
    const pairAt = (lanes: number): X[] => [
      r0.set(e.vloadN(e.add(src.get(), e.mulc(j.get(), 4)), lanes)),
      r1.set(PC > 1 ? e.vloadN(e.add(src.get(), e.mulc(j.get(), 4)), lanes, 4 * Hq * Wq) : e.vzero()),
      e.vstore(e.add(tmp.get(), e.mulc(j.get(), 8)), m.i8x16.shuffle(r0.get(), r1.get(), ZIP_LO)),
      e.vstore(e.add(tmp.get(), e.mulc(j.get(), 8)), m.i8x16.shuffle(r0.get(), r1.get(), ZIP_HI), 16),
    ];
    const zip = [
      src.set(phaseRow(0)),
      e.forc(j, 0, W4, 4, pairAt(4)),
      ...(Wq % 4 ? [j.set(e.i32(W4)), ...pairAt(Wq % 4)] : []),
      m.memory.copy(e.add(e.i32(dx), e.mulc(e.add(e.mulc(pl.get(), H), ih.get()), 4 * W)), e.addc(tmp.get(), 4 * pw), e.i32(4 * W)),
    ];
    const rowBody = [
      p.set(m.i32.and(e.addc(ih.get(), ph), e.i32(1))),
      i.set(m.i32.shr_u(e.addc(ih.get(), ph), e.i32(1))),
      // A phase row past the sub-kernel's (K = 1: odd rows) or past Hq holds no gradient.
      e.if(m.i32.and(m.i32.lt_u(p.get(), e.i32(PR)), m.i32.lt_u(i.get(), e.i32(Hq))), zip, [m.memory.fill(e.add(e.i32(dx), e.mulc(e.add(e.mulc(pl.get(), H), ih.get()), 4 * W)), e.i32(0), e.i32(4 * W))]),
    ];
    const body = [e.forc(ih, 0, H, 1, rowBody)];
    const sp = span(e, fn, tid, N * C);
    // The interleaved row is 2·4V wide, zero past column 2·Wq (dx columns no tap reads).
    const init = [tmp.set(c.threadScratch(4 * 8 * V + 64, tid)), m.memory.fill(e.addc(tmp.get(), 0), e.i32(0), e.i32(4 * 8 * V + 64))];
    return [...init, ...sp.init, e.for(pl, sp.lo.get(), sp.hi.get(), 1, body)];
  });
}

/** The stride-2 forward: X' and W', then the stride-1 convolution of them into y. */
export function conv2dByPhases(c: KernelCtx, d: Phases, run: (k: KernelCtx) => void): void {
  const xs = splitInput(c, d, c.inAddr(0));
  const ws = splitWeights(c, d, c.inAddr(1));
  const b = c.k.inputs.length > 2 ? [{ addr: c.inAddr(2), shape: c.inShape(2) }] : [];
  run(derive(c, 'conv2d', { stride: [1, 1], padding: [0, 0] }, [xs, ws, ...b], [{ addr: c.outAddr(0), shape: c.outShape(0) }]));
}

/** The stride-2 input gradient: W', the stride-1 input gradient into dX', scattered into dx. */
export function conv2dGradInputByPhases(c: KernelCtx, d: Phases, run: (k: KernelCtx) => void): void {
  const ws = splitWeights(c, d, c.inAddr(1));
  const shape = [d.N, d.C * d.F, d.Hq, d.Wq];
  const dxs: At = { addr: c.sharedScratch(4 * shape.reduce((a, v) => a * v, 1)), shape };
  run(derive(c, 'conv2d_grad_input', { stride: [1, 1], padding: [0, 0], shape }, [{ addr: c.inAddr(0), shape: c.inShape(0) }, ws], [dxs]));
  scatterInput(c, d, dxs, c.outAddr(0));
}

/** The x, w and y shapes of a conv2d_grad_input kernel: g [N, O, HO, WO], w, attrs.shape = x. */
export function gradInputShapes(c: KernelCtx): [readonly number[], readonly number[], readonly number[]] {
  return [ints(c.k.attrs, 'shape'), c.inShape(1), c.inShape(0)];
}
