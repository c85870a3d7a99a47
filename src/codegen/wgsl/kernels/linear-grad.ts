import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { exprCode } from '../expr.ts';
import { partsDispatch, type AnyPart } from '../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../shader.ts';

/**
 * linear_grad in one dispatch of up to three independent parts: dw = gᵀ·x (a sum over the batch
 * per weight), db = Σ_n g, dx = g·w with its epilogue (a sum over the outputs per input element).
 */
export function linearGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { inputs: { g, x, w }, outputs: { dw, db, results }, expr } = KERNEL_KINDS.linear_grad.read(k);
  const [N, O] = g.shape;
  const I = x.shape[1]!;
  const parts: AnyPart[] = [
    {
      count: O! * I,
      length: N!,
      term: `return ${sh.read(g, `r * ${u32(O!)} + o / ${u32(I)}`)} * ${sh.read(x, `r * ${u32(I)} + o % ${u32(I)}`)};`,
      store: `${sh.write(dw, 'o')} = acc;`,
    },
  ];
  if (db) parts.push({ count: O!, length: N!, term: `return ${sh.read(g, `r * ${u32(O!)} + o`)};`, store: `${sh.write(db, 'o')} = acc;` });
  if (w) {
    const term = `return ${sh.read(g, `(o / ${u32(I)}) * ${u32(O!)} + r`)} * ${sh.read(w, `r * ${u32(I)} + o % ${u32(I)}`)};`;
    let store = `${sh.write(results[0]!, 'o')} = acc;`;
    if (expr) {
      const { lines, outputs } = exprCode({ sh, domain: [N!, I], input: (j) => k.inputs[j]!, i: 'o', acc: 'acc' }, expr);
      store = [...lines, ...outputs.map((v, j) => `${sh.write(results[j]!, 'o')} = ${v};`)].join('\n');
    }
    parts.push({ count: N! * I, length: O!, term, store });
  }
  return [partsDispatch(sh, k.name, parts)];
}
