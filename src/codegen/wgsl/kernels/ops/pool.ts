import { adaptiveBin, poolWindow, type PoolWindow } from '../../../../ir/ops/pool.ts';
import type { Slice } from '../../../../ir/program.ts';
import { numel } from '../../../../ir/shape.ts';
import { partsDispatch } from '../../grid.ts';
import { f32, i32, Shader, u32, unflatten, type KernelCtx, type WgslDispatch } from '../../shader.ts';

/** What argmaxFn's functions return: the in-plane position of a window's maximum and its value. */
export const WINDOW_MAX = 'struct WindowMax { pos: u32, v: f32 }\n';

/**
 * A WGSL function `name(plane: u32, oh: u32, ow: u32) -> WindowMax` giving the in-plane position
 * ih·W + iw of the maximum of window (oh, ow) and the maximum, PyTorch's CPU rule: scan row-major from the first
 * in-bounds element, move only to a strictly greater value or a NaN, so ties go to the first
 * maximum; padding (-inf) is never chosen. `value(plane, pos, ih, iw)` is the element at (ih, iw)
 * (u32 expressions), pos = ih·W + iw, of the plane numbered `plane`.
 */
export function argmaxFn(name: string, H: number, W: number, p: PoolWindow, value: (plane: string, pos: string, ih: string, iw: string) => string): string {
  return `fn ${name}(plane: u32, oh: u32, ow: u32) -> WindowMax {
  var best = 0xffffffffu;
  var bestV: f32 = 0.0;
  for (var kh = 0u; kh < ${u32(p.kh)}; kh++) {
    let ih = ${i32(-p.ph)} + i32(oh * ${u32(p.sh)} + kh);
    if (ih < 0i || ih >= ${i32(H)}) { continue; }
    for (var kw = 0u; kw < ${u32(p.kw)}; kw++) {
      let iw = ${i32(-p.pw)} + i32(ow * ${u32(p.sw)} + kw);
      if (iw < 0i || iw >= ${i32(W)}) { continue; }
      let pos = u32(ih) * ${u32(W)} + u32(iw);
      let v = ${value('plane', 'pos', 'u32(ih)', 'u32(iw)')};
      if (best == 0xffffffffu || v > bestV || v != v) { best = pos; bestV = v; }
    }
  }
  return WindowMax(best, bestV);
}
`;
}

/** `let lo/hi` bounds (i32, inclusive) of the pooled rows/cols whose windows contain input (ih, iw). */
export function coveringRange(p: PoolWindow, HO: number, WO: number, ih: string, iw: string): string {
  // oh covers ih iff oh·sh - ph <= ih <= oh·sh - ph + kh - 1, so oh runs from
  // ceil((ih + ph - kh + 1)/sh) to floor((ih + ph)/sh); the ceiling is taken of a numerator shifted
  // positive by sh·(kh + 1), because WGSL's integer division truncates toward zero.
  return [
    `let ohLo = max(0i, (i32(${ih}) + ${i32(p.ph - p.kh + 1 + p.sh * (p.kh + 1) + p.sh - 1)}) / ${i32(p.sh)} - ${i32(p.kh + 1)});`,
    `let ohHi = min(${i32(HO - 1)}, i32(${ih} + ${u32(p.ph)}) / ${i32(p.sh)});`,
    `let owLo = max(0i, (i32(${iw}) + ${i32(p.pw - p.kw + 1 + p.sw * (p.kw + 1) + p.sw - 1)}) / ${i32(p.sw)} - ${i32(p.kw + 1)});`,
    `let owHi = min(${i32(WO - 1)}, i32(${iw} + ${u32(p.pw)}) / ${i32(p.sw)});`,
  ].join('\n');
}

function planes(x: Slice) {
  const [, , H, W] = x.shape;
  return { H: H!, W: W! };
}

export function maxPool2d(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const x = ctx.kernel.inputs[0]!;
  const y = ctx.kernel.outputs[0]!;
  const p = poolWindow(ctx.kernel.attrs);
  const { H, W } = planes(x);
  const [, , HO, WO] = y.shape;
  sh.helper('window_max', WINDOW_MAX);
  sh.helper('argmax', argmaxFn('window_argmax', H, W, p, (plane, pos) => sh.read(x, `${plane} + ${pos}`)));
  const store = [
    `let cell = o % ${u32(HO! * WO!)};`,
    `let plane = (o / ${u32(HO! * WO!)}) * ${u32(H * W)};`,
    `${sh.write(y, 'o')} = window_argmax(plane, cell / ${u32(WO!)}, cell % ${u32(WO!)}).v;`,
  ].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(y.shape), length: 0, store }])];
}

/**
 * Gathers, for each input element, the gradients of the windows whose argmax it is (overlapping
 * windows add), recomputing each argmax by the forward's rule.
 */
export function maxPool2dGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [g, x] = ctx.kernel.inputs;
  const dx = ctx.kernel.outputs[0]!;
  const at = poolGradFn(sh, 'max', poolWindow(ctx.kernel.attrs), g!, dx.shape, x);
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(dx.shape), length: 0, store: `${sh.write(dx, 'o')} = ${at}(o);` }])];
}

/**
 * Registers `fn <name>(o: u32) -> f32`: the pool's backward of g at element o of the pool's input
 * (shape `shape`), by gathering from the windows that cover it. Max routes each window's
 * gradient to its argmax, recomputed from x by the forward's rule; avg gives each covered
 * element g/(kh·kw). Returns the function's name. Used by the pool gradient kernels and by
 * batch_norm_grad_stats with gPool, which computes the gradient where it needs it.
 */
export function poolGradFn(sh: Shader, pool: 'max' | 'avg', p: PoolWindow, g: Slice, shape: readonly number[], x?: Slice): string {
  const [, , H, W] = shape as [number, number, number, number];
  const [, , HO, WO] = g.shape as [number, number, number, number];
  const name = `${pool}_pool_grad_${sh.buf(g)}`;
  const gAt = `${sh.read(g, `(nc * ${u32(HO)} + u32(oh)) * ${u32(WO)} + u32(ow)`)}`;
  let take = gAt;
  if (pool === 'max') {
    if (!x) throw new Error('wgsl: max_pool2d_grad needs the pool input');
    sh.helper('window_max', WINDOW_MAX);
    sh.helper('argmax', argmaxFn('window_argmax', H, W, p, (plane, pos) => sh.read(x, `${plane} + ${pos}`)));
    take = `select(0.0, ${gAt}, window_argmax(nc * ${u32(H * W)}, u32(oh), u32(ow)).pos == pos)`;
  }
  sh.helper(name, [
    `fn ${name}(o: u32) -> f32 {`,
    `let pos = o % ${u32(H * W)};`,
    `let nc = o / ${u32(H * W)};`,
    coveringRange(p, HO, WO, `(pos / ${u32(W)})`, `(pos % ${u32(W)})`),
    'var sum: f32 = 0.0;',
    'for (var oh = ohLo; oh <= ohHi; oh++) {',
    `  for (var ow = owLo; ow <= owHi; ow++) { sum += ${take}; }`,
    '}',
    `return ${pool === 'max' ? 'sum' : `sum / ${f32(p.kh * p.kw)}`};`,
    '}',
  ].join('\n'));
  return name;
}

/** count_include_pad=True: every window divides by kh·kw (see the reference kernel for why that is PyTorch's divisor here). */
export function avgPool2d(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const x = ctx.kernel.inputs[0]!;
  const y = ctx.kernel.outputs[0]!;
  const p = poolWindow(ctx.kernel.attrs);
  const { H, W } = planes(x);
  const [, , HO, WO] = y.shape;
  const store = [
    unflatten('o', [numel(y.shape) / (HO! * WO!), HO!, WO!], ['nc', 'oh', 'ow']),
    'var sum: f32 = 0.0;',
    `for (var kh = 0u; kh < ${u32(p.kh)}; kh++) {`,
    `  let ih = ${i32(-p.ph)} + i32(oh * ${u32(p.sh)} + kh);`,
    `  if (ih < 0i || ih >= ${i32(H)}) { continue; }`,
    `  for (var kw = 0u; kw < ${u32(p.kw)}; kw++) {`,
    `    let iw = ${i32(-p.pw)} + i32(ow * ${u32(p.sw)} + kw);`,
    `    if (iw < 0i || iw >= ${i32(W)}) { continue; }`,
    `    sum += ${sh.read(x, `nc * ${u32(H * W)} + u32(ih) * ${u32(W)} + u32(iw)`)};`,
    '  }',
    '}',
    `${sh.write(y, 'o')} = sum / ${f32(p.kh * p.kw)};`,
  ].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(y.shape), length: 0, store }])];
}

export function avgPool2dGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const g = ctx.kernel.inputs[0]!;
  const dx = ctx.kernel.outputs[0]!;
  const at = poolGradFn(sh, 'avg', poolWindow(ctx.kernel.attrs), g, dx.shape);
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(dx.shape), length: 0, store: `${sh.write(dx, 'o')} = ${at}(o);` }])];
}

/**
 * WGSL `bin_<axis>(i) -> vec2<u32>`: bin i's [lo, hi) over an axis of `size` cut into `out` bins
 * (adaptiveBin's rule, src/ir/ops/pool.ts).
 */
function binFn(axis: string, size: number, out: number): string {
  return `fn bin_${axis}(i: u32) -> vec2<u32> {\n  return vec2<u32>(i * ${u32(size)} / ${u32(out)}, (i * ${u32(size)} + ${u32(size + out - 1)}) / ${u32(out)});\n}\n`;
}

/** The most rows a bin of an axis holds. */
function widestBin(size: number, out: number): number {
  return Math.max(...Array.from({ length: out }, (_, i) => adaptiveBin(i, size, out)).map(([lo, hi]) => hi - lo));
}

/**
 * One sum per output cell over a fixed-length term range of the widest bin's size, terms past
 * the cell's own bin reading 0: global pooling is then the plain reduction of a plane (a
 * workgroup per plane when planes are long and few).
 */
export function adaptiveAvgPool2d(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const x = ctx.kernel.inputs[0]!;
  const y = ctx.kernel.outputs[0]!;
  const { H, W } = planes(x);
  const [, , HO, WO] = y.shape;
  sh.helper('bin_h', binFn('h', H, HO!));
  sh.helper('bin_w', binFn('w', W, WO!));
  const bh = widestBin(H, HO!);
  const bw = widestBin(W, WO!);
  const cell = [unflatten('o', [numel(y.shape) / (HO! * WO!), HO!, WO!], ['nc', 'oh', 'ow']), 'let rows = bin_h(oh);', 'let cols = bin_w(ow);'];
  const term = [
    ...cell,
    `let ih = rows.x + r / ${u32(bw)};`,
    `let iw = cols.x + r % ${u32(bw)};`,
    'if (ih >= rows.y || iw >= cols.y) { return 0.0; }',
    `return ${sh.read(x, `nc * ${u32(H * W)} + ih * ${u32(W)} + iw`)};`,
  ].join('\n');
  const store = [...cell, `${sh.write(y, 'o')} = acc / f32((rows.y - rows.x) * (cols.y - cols.x));`].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(y.shape), length: bh * bw, term, store }])];
}

/**
 * Gathers, for each input element, g/count of every bin that holds it: bins oh with
 * floor(ih·HO/H) <= oh < ceil((ih+1)·HO/H), and likewise for columns.
 */
export function adaptiveAvgPool2dGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const g = ctx.kernel.inputs[0]!;
  const dx = ctx.kernel.outputs[0]!;
  const [, , H, W] = dx.shape;
  const [, , HO, WO] = g.shape;
  sh.helper('bin_h', binFn('h', H!, HO!));
  sh.helper('bin_w', binFn('w', W!, WO!));
  const store = [
    `let pos = o % ${u32(H! * W!)};`,
    `let nc = o / ${u32(H! * W!)};`,
    `let ih = pos / ${u32(W!)};`,
    `let iw = pos % ${u32(W!)};`,
    'var sum: f32 = 0.0;',
    `for (var oh = ih * ${u32(HO!)} / ${u32(H!)}; oh < ((ih + 1u) * ${u32(HO!)} + ${u32(H! - 1)}) / ${u32(H!)}; oh++) {`,
    '  let rows = bin_h(oh);',
    `  for (var ow = iw * ${u32(WO!)} / ${u32(W!)}; ow < ((iw + 1u) * ${u32(WO!)} + ${u32(W! - 1)}) / ${u32(W!)}; ow++) {`,
    '    let cols = bin_w(ow);',
    `    sum += ${sh.read(g, `(nc * ${u32(HO!)} + oh) * ${u32(WO!)} + ow`)} / f32((rows.y - rows.x) * (cols.y - cols.x));`,
    '  }',
    '}',
    `${sh.write(dx, 'o')} = sum;`,
  ].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(dx.shape), length: 0, store }])];
}
