import { ints, num } from '../../../../ir/op.ts';
import { numel, strides, type Shape } from '../../../../ir/shape.ts';
import { partsDispatch } from '../../grid.ts';
import { coord, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

// Copies between layouts, one thread per output element: permute, slice and its adjoint pad.

/** Σ_k coordinate k of flat `o` in `shape` · st[k] (+ offset): where a strided view keeps element o. */
function strided(o: string, shape: Shape, st: readonly number[], offset = 0): string {
  const terms = shape.flatMap((n, k) => (n === 1 || st[k] === 0 ? [] : [st[k] === 1 ? coord(o, shape, k) : `${coord(o, shape, k)} * ${u32(st[k]!)}`]));
  if (offset) terms.push(u32(offset));
  return terms.join(' + ') || '0u';
}

/** dst[o] = src[index(o)] over dst. */
function gather(ctx: KernelCtx, index: string): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [x] = ctx.kernel.inputs;
  const y = ctx.kernel.outputs[0]!;
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(y.shape), length: 0, store: `${sh.write(y, 'o')} = ${sh.read(x!, index)};` }])];
}

export function permute(ctx: KernelCtx): WgslDispatch[] {
  const xst = strides(ctx.kernel.inputs[0]!.shape);
  const y = ctx.kernel.outputs[0]!.shape;
  return gather(ctx, strided('o', y, ints(ctx.kernel.attrs, 'dims').map((d) => xst[d]!)));
}

export function slice(ctx: KernelCtx): WgslDispatch[] {
  const st = strides(ctx.kernel.inputs[0]!.shape);
  const y = ctx.kernel.outputs[0]!.shape;
  return gather(ctx, strided('o', y, st, num(ctx.kernel.attrs, 'start') * st[num(ctx.kernel.attrs, 'dim')]!));
}

/** Zeros outside [before, before + n) along dim; x inside, read as the slice that pad undoes. */
export function pad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [x] = ctx.kernel.inputs;
  const y = ctx.kernel.outputs[0]!;
  const d = num(ctx.kernel.attrs, 'dim');
  const before = num(ctx.kernel.attrs, 'before');
  const st = strides(x!.shape);
  const c = coord('o', y.shape, d);
  // y's coordinates read x with dim d shifted back by `before`; the wrap of c - before below 0
  // is never read (the select's condition excludes it, and the index stays in bounds).
  const inside = `${c} >= ${u32(before)} && ${c} < ${u32(before + x!.shape[d]!)}`;
  const idx = y.shape.map((_, k) => (k === d ? `min(${c} - ${u32(before)}, ${u32(x!.shape[d]! - 1)})` : coord('o', y.shape, k)));
  const flat = idx.map((e, k) => (st[k] === 1 ? e : `${e} * ${u32(st[k]!)}`)).join(' + ');
  const store = [`var v: f32 = 0.0;`, `if (${inside}) { v = ${sh.read(x!, flat)}; }`, `${sh.write(y, 'o')} = v;`].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(y.shape), length: 0, store }])];
}
