import type { Attrs } from '../../../../ir/graph.ts';
import { num } from '../../../../ir/op.ts';
import { layerNormRows } from '../../../../ir/ops/layer-norm.ts';
import type { Slice } from '../../../../ir/program.ts';
import { partsDispatch, type Part } from '../../grid.ts';
import { f32, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

// One thread per row: it sums the row (mean, then the variance about it, as the other backends),
// then writes the row. Rows are short in a transformer (the model width), and many.

/**
 * The part of a dispatch computing layer_norm (g undefined) or layer_norm_grad over x's rows, of
 * g·w when given w (its [row] weight); `store(i, value)` gives the statements that write element
 * i, whose value is x̂ or dx.
 */
export function layerNormRowsPart(sh: Shader, attrs: Attrs, x: Slice, g: Slice | undefined, store: (i: string, value: string) => string[], w?: Slice): Part {
  const [rows, D] = layerNormRows(x.shape, attrs);
  const eps = num(attrs, 'eps');
  const xa = (i: string) => sh.read(x, i);
  const ga = (i: string) => (w ? `(${sh.read(g!, i)} * ${sh.read(w, 'k')})` : sh.read(g!, i));
  const loop = (body: string[]) => [`for (var k = 0u; k < ${u32(D)}; k++) {`, '  let i = base + k;', ...body.map((l) => `  ${l}`), '}'];
  const lines = [
    `let base = o * ${u32(D)};`,
    'var s: f32 = 0.0;',
    ...loop([`s += ${xa('i')};`]),
    `let mean = s / ${f32(D)};`,
    'var ss: f32 = 0.0;',
    ...loop([`let d = ${xa('i')} - mean;`, 'ss += d * d;']),
    `let r = 1.0 / sqrt(ss / ${f32(D)} + ${f32(eps)});`,
    ...(g
      ? ['var sg: f32 = 0.0;', 'var sgx: f32 = 0.0;', ...loop([`let gk = ${ga('i')};`, 'sg += gk;', `sgx += gk * (${xa('i')} - mean) * r;`]), `let gm = sg / ${f32(D)};`, `let gxm = sgx / ${f32(D)};`]
      : []),
    ...loop([`let xh = (${xa('i')} - mean) * r;`, `let lnv = ${g ? `r * (${ga('i')} - gm - xh * gxm)` : 'xh'};`, ...store('i', 'lnv')]),
  ];
  return { count: rows, length: 0, store: lines.join('\n') };
}

/** The dispatch of layerNormRowsPart alone. */
export function layerNormRowsDispatch(sh: Shader, label: string, attrs: Attrs, x: Slice, g: Slice | undefined, store: (i: string, value: string) => string[]): WgslDispatch {
  return partsDispatch(sh, label, [layerNormRowsPart(sh, attrs, x, g, store)]);
}

export function layerNorm(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const y = ctx.kernel.outputs[0]!;
  return [layerNormRowsDispatch(sh, ctx.kernel.name, ctx.kernel.attrs, ctx.kernel.inputs[0]!, undefined, (i, v) => [`${sh.write(y, i)} = ${v};`])];
}

export function layerNormGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [g, x] = ctx.kernel.inputs;
  const dx = ctx.kernel.outputs[0]!;
  return [layerNormRowsDispatch(sh, ctx.kernel.name, ctx.kernel.attrs, x!, g, (i, v) => [`${sh.write(dx, i)} = ${v};`])];
}
