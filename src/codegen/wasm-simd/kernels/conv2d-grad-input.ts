import { ints, pair } from '../../../ir/op.ts';
import { convImage, type ConvImage } from '../conv.ts';
import { conv2dGradInputByPhases, gradInputShapes, phasesOf } from '../phase-split.ts';
import { winogradPlan } from '../winograd-plan.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, imageRuns, onThread0, type KernelCtx } from '../kernel.ts';

/**
 * dx of conv2d from (g, w): the transposed convolution, computed as a plain stride-1 convolution
 * (convImage) of the output gradient, spread out by the stride and bordered by KH-1-ph zeros, with
 * the weights transposed to [C, O] and flipped. Per image, in this thread's scratch:
 *   Gs[o, v, u] = g[o, oh, ow] at v = oh·sh + KH-1-ph, u = ow·sw + KW-1-pw (0 elsewhere),
 *   dx[c, ih, iw] = Σ_{o,kh,kw} Gs[o, ih+kh, iw+kw] · w[o, c, KH-1-kh, KW-1-kw]
 * Strides > 1 multiply by the zeros in between: the price of one vectorised path. Where a
 * Winograd kernel fits the convolution (3×3, stride 1: winogradPlan), it runs on the flipped
 * weights' transforms instead, on runs of images as that kernel takes them. Stride 2 runs as the stride-1 input gradient of phase images, scattered
 * back (src/codegen/wasm-simd/phase-split.ts): none of the spread gradient's zeros.
 */
export function conv2dGradInput(c: KernelCtx): void {
  const phases = phasesOf(c, ...gradInputShapes(c));
  if (phases) return conv2dGradInputByPhases(c, phases);
  const { e } = c;
  const m = e.m;
  const [N, O, HO, WO] = c.inShape(0) as [number, number, number, number];
  const [, C, KH, KW] = c.inShape(1) as [number, number, number, number];
  const [, , H, W] = ints(c.k.attrs, 'shape') as [number, number, number, number];
  const [sh, sw] = pair(c.k.attrs, 'stride');
  const [ph, pw] = pair(c.k.attrs, 'padding');
  const Hs = H + KH - 1;
  const Ws = W + KW - 1;
  const g = c.inAddr(0);
  const w = c.inAddr(1);
  const dx = c.outAddr(0);
  const gsBytes = 4 * O * Hs * Ws;
  const wtBytes = 4 * C * O * KH * KW;
  // Output cells whose spread position lands inside Gs (all of them unless padding >= kernel).
  const rowOff = KH - 1 - ph;
  const colOff = KW - 1 - pw;
  const ohLo = Math.max(0, Math.ceil(-rowOff / sh));
  const ohHi = Math.min(HO, Math.floor((Hs - 1 - rowOff) / sh) + 1);
  const owLo = Math.max(0, Math.ceil(-colOff / sw));
  const owHi = Math.min(WO, Math.floor((Ws - 1 - colOff) / sw) + 1);
  c.phase((fn, tid) => {
    const base = fn.i32();
    const gs = fn.i32();
    const wt = fn.i32();
    const out = fn.i32();
    const n = fn.i32();
    const [o, cc, kh, kw, oh, ow] = [fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32(), fn.i32()];
    // wt[c, o, kh, kw] = w[o, c, KH-1-kh, KW-1-kw]
    const flip = e.forc(cc, 0, C, 1, [
      e.forc(o, 0, O, 1, [
        e.forc(kh, 0, KH, 1, [
          e.forc(kw, 0, KW, 1, [
            e.storef(
              e.add(wt.get(), e.mulc(e.add(e.mulc(e.add(e.mulc(e.add(e.mulc(cc.get(), O), o.get()), KH), kh.get()), KW), kw.get()), 4)),
              e.loadf(e.add(e.i32(w), e.mulc(e.add(e.mulc(e.add(e.mulc(e.add(e.mulc(o.get(), C), cc.get()), KH), e.sub(e.i32(KH - 1), kh.get())), KW), e.sub(e.i32(KW - 1), kw.get())), 4))),
            ),
          ]),
        ]),
      ]),
    ]);
    // Row r of output channel oo of image n + i, and where it is spread to in that image's Gs.
    const gRow = (i: number, oo: X, r: X) => e.add(e.i32(g), e.add(e.mulc(e.addc(n.get(), i), 4 * O * HO * WO), e.add(e.mulc(oo, 4 * HO * WO), e.mulc(r, 4 * WO))));
    const gsAt = (i: number, oo: X, r: X) => e.add(gs.get(), e.addc(e.add(e.mulc(oo, 4 * Hs * Ws), e.mulc(e.addc(e.mulc(r, sh), rowOff), 4 * Ws)), i * gsBytes));
    const spreadRow = (i: number): X =>
      sw === 1
        ? m.memory.copy(e.addc(gsAt(i, o.get(), oh.get()), 4 * (owLo + colOff)), e.addc(gRow(i, o.get(), oh.get()), 4 * owLo), e.i32(4 * (owHi - owLo)))
        : e.forc(ow, owLo, owHi, 1, [e.storef(e.add(gsAt(i, o.get(), oh.get()), e.mulc(e.addc(e.mulc(ow.get(), sw), colOff), 4)), e.loadf(e.add(gRow(i, o.get(), oh.get()), e.mulc(ow.get(), 4))))]);
    const p: ConvImage = { C: O, Hp: Hs, Wp: Ws, O: C, KH, KW, sh: 1, sw: 1, HO: H, WO: W, w: wt, live: { r0: ohLo * sh + rowOff, r1: (ohHi - 1) * sh + rowOff + 1, c0: owLo * sw + colOff, c1: (owHi - 1) * sw + colOff + 1 } };
    const wino = sh === 1 && sw === 1 ? winogradPlan(p) : undefined;
    const per = wino?.images ?? 1;
    const init = [base.set(c.threadScratch(per * gsBytes + 64 + (wino ? 0 : wtBytes), tid)), gs.set(base.get())];
    let image: (count: number) => X[];
    if (wino) {
      const ws = fn.i32();
      // U[ξ, c, o] of wt[c, o] = w[o, c] flipped.
      const at = (cc: X, oo: X, kh: number, kw: number) => e.add(e.i32(w), e.mulc(e.addc(e.mulc(e.add(e.mulc(oo, C), cc), KH * KW), (KH - 1 - kh) * KW + (KW - 1 - kw)), 4));
      init.push(wt.set(c.threadScratch(wino.weightBytes, tid)), ws.set(c.threadScratch(wino.scratchBytes, tid)), ...wino.weights(e, fn, wt.get(), at));
      image = (count) => wino.image(e, fn, wt.get(), gs, out, ws.get(), count);
    } else {
      init.push(wt.set(e.addc(base.get(), gsBytes + 64)), flip);
      image = () => convImage(e, fn, p, gs, out);
    }
    const run = (count: number): X[] => [
      m.memory.fill(gs.get(), e.i32(0), e.i32(count * gsBytes)),
      ...(ohHi > ohLo && owHi > owLo ? Array.from({ length: count }, (_, i) => e.forc(o, 0, O, 1, [e.forc(oh, ohLo, ohHi, 1, [spreadRow(i)])])) : []),
      out.set(e.add(e.i32(dx), e.mulc(n.get(), 4 * C * H * W))),
      ...image(count),
    ];
    const parallel = e.T > 1 && Math.ceil(N / per) >= e.T && N * O * H * W * C * KH * KW >= PARALLEL_MIN;
    const loop = imageRuns(c, fn, n, N, per, parallel, run);
    return parallel ? [...init, ...loop] : onThread0(e, tid, [...init, ...loop]);
  });
}
