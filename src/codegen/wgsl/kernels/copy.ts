import { numel } from '../../../ir/shape.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, sliceKey, type KernelCtx, type WgslDispatch } from '../shader.ts';

/**
 * dst = src, for `copy` kernels and `reshape` (a view of row-major data). A copy of a slice onto
 * itself (a reshape the planner placed in place) launches nothing. A dispatch rather than
 * copyBufferToBuffer, which WebGPU forbids within one buffer.
 */
export function copy(ctx: KernelCtx): WgslDispatch[] {
  const src = ctx.kernel.inputs[0]!;
  const dst = ctx.kernel.outputs[0]!;
  if (sliceKey(src) === sliceKey(dst)) return [];
  const sh = new Shader(ctx);
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(dst.shape), length: 0, store: `${sh.write(dst, 'o')} = ${sh.read(src, 'o')};` }])];
}
