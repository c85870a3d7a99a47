import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { layerNormRows } from '../../../ir/ops/layer-norm.ts';
import { epilogueStores } from '../expr.ts';
import { partsDispatch, type AnyPart } from '../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { layerNormRowsPart } from './ops/layer-norm.ts';

/** layer_norm_backward in one dispatch: dw = Σ g·x̂ and db = Σ g (a sum over the rows per column), and dx by rows with its epilogue. */
export function layerNormBackward(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { inputs: { g, x, xhat, w }, outputs: { dw, db, results }, expr } = KERNEL_KINDS.layer_norm_backward.read(k);
  const [rows, D] = layerNormRows(x.shape, k.attrs);
  const at = `r * ${u32(D)} + o`;
  const parts: AnyPart[] = [{ count: D, length: rows, term: `return ${sh.read(g, at)} * ${sh.read(xhat, at)};`, store: `${sh.write(dw, 'o')} = acc;` }];
  if (db) parts.push({ count: D, length: rows, term: `return ${sh.read(g, at)};`, store: `${sh.write(db, 'o')} = acc;` });
  parts.push(layerNormRowsPart(sh, k.attrs, x, g, (i, v) => epilogueStores({ sh, domain: x.shape, input: (j) => k.inputs[j]!, i, acc: v }, expr, results), w));
  return [partsDispatch(sh, k.name, parts)];
}
