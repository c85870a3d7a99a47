import { ints } from '../../../../ir/op.ts';
import { numel, strides, type Shape } from '../../../../ir/shape.ts';
import { partsDispatch } from '../../grid.ts';
import { coord, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

/**
 * Σ of x over the axes where `kept` is 1 and x is not: output o enumerates the kept coordinates,
 * term r the reduced ones (both row-major), and x's index is rebuilt from the two.
 */
function reduceOver(ctx: KernelCtx, x: Shape, kept: Shape): WgslDispatch[] {
  const sh = new Shader(ctx);
  const xs = ctx.kernel.inputs[0]!;
  const out = ctx.kernel.outputs[0]!;
  const st = strides(x);
  const keptAxes = x.map((_, d) => d).filter((d) => kept[d] !== 1 || x[d] === 1);
  const redAxes = x.map((_, d) => d).filter((d) => kept[d] === 1 && x[d] !== 1);
  const part = (axes: number[], v: string) => {
    const shape = axes.map((d) => x[d]!);
    return axes.map((d, k) => `${coord(v, shape, k)} * ${u32(st[d]!)}`);
  };
  const idx = [...part(keptAxes, 'o'), ...part(redAxes, 'r')].join(' + ') || '0u';
  const length = numel(redAxes.map((d) => x[d]!));
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(out.shape), length, term: `return ${sh.read(xs, idx)};`, store: `${sh.write(out, 'o')} = acc;` }])];
}

export function sum(ctx: KernelCtx): WgslDispatch[] {
  const x = ctx.kernel.inputs[0]!.shape;
  const axes = ints(ctx.kernel.attrs, 'axes');
  return reduceOver(ctx, x, x.map((d, i) => (axes.includes(i) ? 1 : d)));
}

/** The adjoint of broadcasting: target aligned on the right, leading axes reduced. */
export function sumTo(ctx: KernelCtx): WgslDispatch[] {
  const x = ctx.kernel.inputs[0]!.shape;
  const s = ctx.kernel.outputs[0]!.shape;
  const lead = x.length - s.length;
  return reduceOver(ctx, x, x.map((_, d) => (d < lead ? 1 : s[d - lead]!)));
}
