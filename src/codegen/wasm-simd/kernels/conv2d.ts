import { pair } from '../../../ir/op.ts';
import { convImage } from '../conv.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, onThread0, sharedLoop, type KernelCtx } from '../kernel.ts';

/**
 * y = conv(x, w) + b, NCHW × OIHW, stride and zero padding. Threads take whole images. A padded
 * convolution first copies each image into this thread's scratch with its zero border, so the
 * inner loops never test bounds. Images are shared out as threads come for them (sharedLoop). The image loop: see convImage.
 */
export function conv2d(c: KernelCtx): void {
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
    const perImage = [...pad, out.set(e.add(e.i32(y), e.mulc(n.get(), 4 * O * HO * WO))), ...convImage(e, fn, { C, Hp, Wp, O, KH, KW, sh, sw, HO, WO, w, bias, live: { r0: ph, r1: ph + H, c0: pw, c1: pw + W } }, img, out)];
    const init = padded ? [scratch.set(c.threadScratch(4 * C * Hp * Wp, tid))] : [];
    if (parallel) return [...init, ...sharedLoop(c, fn, n, N, perImage)];
    return onThread0(e, tid, [...init, e.forc(n, 0, N, 1, perImage)]);
  });
}
