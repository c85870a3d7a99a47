import { pair } from '../../../../ir/op.ts';
import { numel } from '../../../../ir/shape.ts';
import { partsDispatch } from '../../grid.ts';
import { at, i32, Shader, u32, unflatten, type KernelCtx, type WgslDispatch } from '../../shader.ts';

// NCHW activations, OIHW weights, as PyTorch; input row ih = oh·stride - padding + kh, rows
// outside [0, H) are zero padding. Each kernel is a gather: one output element sums its terms,
// so nothing is scattered and no atomics are needed.

function window(ctx: KernelCtx) {
  const [sh, sw] = pair(ctx.kernel.attrs, 'stride');
  const [ph, pw] = pair(ctx.kernel.attrs, 'padding');
  return { sh, sw, ph, pw };
}

export function conv2d(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [x, w, b] = ctx.kernel.inputs;
  const y = ctx.kernel.outputs[0]!;
  const [, C, H, W] = x!.shape;
  const [, , KH, KW] = w!.shape;
  const { sh: SH, sw: SW, ph: PH, pw: PW } = window(ctx);
  const term = [
    unflatten('o', y.shape, ['n', 'oc', 'oh', 'ow']),
    unflatten('r', [C!, KH!, KW!], ['c', 'kh', 'kw']),
    `let ih = ${i32(-PH)} + i32(oh * ${u32(SH)} + kh);`,
    `let iw = ${i32(-PW)} + i32(ow * ${u32(SW)} + kw);`,
    `if (ih < 0i || ih >= ${i32(H!)} || iw < 0i || iw >= ${i32(W!)}) { return 0.0; }`,
    `return ${sh.read(x!, at(x!.shape, ['n', 'c', 'u32(ih)', 'u32(iw)']))} * ${sh.read(w!, at(w!.shape, ['oc', 'c', 'kh', 'kw']))};`,
  ].join('\n');
  const bias = b ? ` + ${sh.read(b, `(o / ${u32(y.shape[2]! * y.shape[3]!)}) % ${u32(y.shape[1]!)}`)}` : '';
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(y.shape), length: C! * KH! * KW!, term, store: `${sh.write(y, 'o')} = acc${bias};` }])];
}

/** dx[n,c,ih,iw] = Σ_{o,kh,kw} g[n,o,oh,ow]·w[o,c,kh,kw] over the (oh, ow) whose window read (ih, iw). */
export function conv2dGradInput(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [g, w] = ctx.kernel.inputs;
  const dx = ctx.kernel.outputs[0]!;
  const [, , HO, WO] = g!.shape;
  const [O, , KH, KW] = w!.shape;
  const { sh: SH, sw: SW, ph: PH, pw: PW } = window(ctx);
  const term = [
    unflatten('o', dx.shape, ['n', 'c', 'ih', 'iw']),
    unflatten('r', [O!, KH!, KW!], ['oc', 'kh', 'kw']),
    `let th = i32(ih + ${u32(PH)}) - i32(kh);`,
    `let tw = i32(iw + ${u32(PW)}) - i32(kw);`,
    `if (th < 0i || tw < 0i || th % ${i32(SH)} != 0i || tw % ${i32(SW)} != 0i) { return 0.0; }`,
    `let oh = u32(th / ${i32(SH)});`,
    `let ow = u32(tw / ${i32(SW)});`,
    `if (oh >= ${u32(HO!)} || ow >= ${u32(WO!)}) { return 0.0; }`,
    `return ${sh.read(g!, at(g!.shape, ['n', 'oc', 'oh', 'ow']))} * ${sh.read(w!, at(w!.shape, ['oc', 'c', 'kh', 'kw']))};`,
  ].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(dx.shape), length: O! * KH! * KW!, term, store: `${sh.write(dx, 'o')} = acc;` }])];
}

/** dw[o,c,kh,kw] = Σ_{n,oh,ow} g[n,o,oh,ow]·x[n,c,ih,iw]. */
export function conv2dGradWeight(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [g, x] = ctx.kernel.inputs;
  const dw = ctx.kernel.outputs[0]!;
  const [N, , HO, WO] = g!.shape;
  const [, , H, W] = x!.shape;
  const { sh: SH, sw: SW, ph: PH, pw: PW } = window(ctx);
  const term = [
    unflatten('o', dw.shape, ['oc', 'c', 'kh', 'kw']),
    unflatten('r', [N!, HO!, WO!], ['n', 'oh', 'ow']),
    `let ih = ${i32(-PH)} + i32(oh * ${u32(SH)} + kh);`,
    `let iw = ${i32(-PW)} + i32(ow * ${u32(SW)} + kw);`,
    `if (ih < 0i || ih >= ${i32(H!)} || iw < 0i || iw >= ${i32(W!)}) { return 0.0; }`,
    `return ${sh.read(g!, at(g!.shape, ['n', 'oc', 'oh', 'ow']))} * ${sh.read(x!, at(x!.shape, ['n', 'c', 'u32(ih)', 'u32(iw)']))};`,
  ].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(dw.shape), length: N! * HO! * WO!, term, store: `${sh.write(dw, 'o')} = acc;` }])];
}
