import { pair } from '../../../ir/op.ts';
import { convImage, type ConvImage } from '../conv.ts';
import { conv2dByPhases, phasesOf } from '../phase-split.ts';
import { winogradPlan } from '../winograd-plan.ts';
import type { X } from '../emitter.ts';
import { PARALLEL_MIN, imageRuns, onThread0, type KernelCtx } from '../kernel.ts';

/**
 * y = conv(x, w) + b, NCHW × OIHW, stride and zero padding. Threads take whole images. A padded
 * convolution first copies each image into this thread's scratch with its zero border, so the
 * inner loops never test bounds. Images (or runs of them, as the Winograd kernel takes them) are
 * shared out as threads come for them (imageRuns). The image loop: see convImage,
 * or a Winograd kernel for 3×3 stride-1 shapes one fits (winogradPlan; each thread first transforms the weights).
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
    const scratch = fn.i32();
    const p: ConvImage = { C, Hp, Wp, O, KH, KW, sh, sw, HO, WO, w, bias, live: { r0: ph, r1: ph + H, c0: pw, c1: pw + W } };
    const wino = winogradPlan(p);
    const per = wino?.images ?? 1;
    const imageBytes = 4 * C * Hp * Wp;
    // Image n + i with its zero border at scratch + i·imageBytes.
    const pad = (i: number): X[] => {
      const [cc, hh] = [fn.i32(), fn.i32()];
      const at = e.addc(scratch.get(), i * imageBytes);
      return [
        m.memory.fill(at, e.i32(0), e.i32(imageBytes)),
        e.forc(cc, 0, C, 1, [
          e.forc(hh, 0, H, 1, [
            m.memory.copy(
              e.add(e.copyExpr(at), e.add(e.mulc(cc.get(), 4 * Hp * Wp), e.addc(e.mulc(hh.get(), 4 * Wp), 4 * (ph * Wp + pw)))),
              e.add(e.i32(x), e.add(e.mulc(e.addc(n.get(), i), 4 * C * H * W), e.add(e.mulc(cc.get(), 4 * H * W), e.mulc(hh.get(), 4 * W)))),
              e.i32(4 * W),
            ),
          ]),
        ]),
      ];
    };
    const init = padded ? [scratch.set(c.threadScratch(per * imageBytes, tid))] : [];
    let image: (count: number) => X[];
    if (wino) {
      const [u, ws] = [fn.i32(), fn.i32()];
      init.push(u.set(c.threadScratch(wino.weightBytes, tid)), ws.set(c.threadScratch(wino.scratchBytes, tid)));
      init.push(...wino.weights(e, fn, u.get(), (o, cc, kh, kw) => e.add(e.i32(w), e.mulc(e.addc(e.mulc(e.add(e.mulc(o, C), cc), KH * KW), kh * KW + kw), 4))));
      image = (count) => wino.image(e, fn, u.get(), img, out, ws.get(), count);
    } else {
      image = () => convImage(e, fn, p, img, out);
    }
    const run = (count: number): X[] => [
      ...(padded ? [...Array.from({ length: count }, (_, i) => pad(i)).flat(), img.set(scratch.get())] : [img.set(e.add(e.i32(x), e.mulc(n.get(), 4 * C * H * W)))]),
      out.set(e.add(e.i32(y), e.mulc(n.get(), 4 * O * HO * WO))),
      ...image(count),
    ];
    const parallel = e.T > 1 && Math.ceil(N / per) >= e.T && N * O * HO * WO * C * KH * KW >= PARALLEL_MIN;
    const loop = imageRuns(c, fn, n, N, per, parallel, run);
    return parallel ? [...init, ...loop] : onThread0(e, tid, [...init, ...loop]);
  });
}
