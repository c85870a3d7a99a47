import { pair } from '../../../ir/op.ts';
import { convImage, type ConvImage } from '../conv.ts';
import { conv2dByPhases, phasesOf } from '../phase-split.ts';
import { winogradFits, winogradImage, winogradScratchBytes, winogradWeightBytes, winogradWeights } from '../winograd.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, type KernelCtx } from '../kernel.ts';

/**
 * y = conv(x, w) + b, NCHW × OIHW, stride and zero padding. Threads take whole images. A padded
 * convolution first copies each image into this thread's scratch with its zero border, so the
 * inner loops never test bounds. Images are shared out as threads come for them (sharedLoop). The image loop: see convImage,
 * or winogradImage for 3×3 stride-1 shapes it fits (each thread first transforms the weights).
 * Stride 2 runs as a stride-1 convolution of phase images (src/codegen/wasm-simd/phase-split.ts).
 */
export function conv2d(c: KernelCtx): void {
  const phases = phasesOf(c, c.inShape(0), c.inShape(1), c.outShape(0));
  if (phases) return conv2dByPhases(c, phases);
  const { e } = c;
  const m = e.m;
  const [N, C, H, W] = c.inShape(0) as [number, number, number, number];
  const [O, , KH, KW] = c.inShape(1) as [number, number, number, number];
  const [, , HO, WO] = c.outShape(0) as [number, number, number, number];
  const [sh, sw] = pair(c.k.attrs, 'stride');
  const [ph, pw] = pair(c.k.attrs, 'padding');
  const padded = ph > 0 || pw > 0;
  const Hp = H + 2 * ph;
  const Wp = W + 2 * pw;
  const x = c.inAddr(0);
  const w = c.inAddr(1);
  const bias = c.k.inputs.length > 2 ? c.inAddr(2) : undefined;
  const y = c.outAddr(0);
  c.phase((fn, tid) => {
    const n = fn.i32();
    const img = fn.i32();
    const out = fn.i32();
    const parallel = e.T > 1 && N >= e.T && N * O * HO * WO * C * KH * KW >= PARALLEL_MIN;
    const scratch = fn.i32();
    const pad: X[] = [];
    if (padded) {
      const cc = fn.i32();
      const hh = fn.i32();
      pad.push(
        m.memory.fill(scratch.get(), e.i32(0), e.i32(4 * C * Hp * Wp)),
        e.forc(cc, 0, C, 1, [
          e.forc(hh, 0, H, 1, [
            m.memory.copy(
              e.add(scratch.get(), e.add(e.mulc(cc.get(), 4 * Hp * Wp), e.addc(e.mulc(hh.get(), 4 * Wp), 4 * (ph * Wp + pw)))),
              e.add(e.i32(x), e.add(e.mulc(n.get(), 4 * C * H * W), e.add(e.mulc(cc.get(), 4 * H * W), e.mulc(hh.get(), 4 * W)))),
              e.i32(4 * W),
            ),
          ]),
        ]),
        img.set(scratch.get()),
      );
    } else {
      pad.push(img.set(e.add(e.i32(x), e.mulc(n.get(), 4 * C * H * W))));
    }
    const p: ConvImage = { C, Hp, Wp, O, KH, KW, sh, sw, HO, WO, w, bias, live: { r0: ph, r1: ph + H, c0: pw, c1: pw + W } };
    const init = padded ? [scratch.set(c.threadScratch(4 * C * Hp * Wp, tid))] : [];
    let image: X[];
    if (winogradFits(p)) {
      const [u, ws] = [fn.i32(), fn.i32()];
      init.push(u.set(c.threadScratch(winogradWeightBytes(O, C), tid)), ws.set(c.threadScratch(winogradScratchBytes(C), tid)));
      init.push(...winogradWeights(e, fn, u.get(), O, C, (o, cc, kh, kw) => e.add(e.i32(w), e.mulc(e.addc(e.mulc(e.add(e.mulc(o, C), cc), KH * KW), kh * KW + kw), 4))));
      image = winogradImage(e, fn, p, u.get(), img, out, ws.get());
    } else {
      image = convImage(e, fn, p, img, out);
    }
    const perImage = [...pad, out.set(e.add(e.i32(y), e.mulc(n.get(), 4 * O * HO * WO))), ...image];
    if (parallel) return [...init, ...sharedLoop(c, fn, n, N, perImage)];
    return onThread0(e, tid, [...init, e.forc(n, 0, N, 1, perImage)]);
  });
}
