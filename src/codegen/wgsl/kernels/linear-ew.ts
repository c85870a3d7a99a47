import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { exprCode } from '../expr.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../shader.ts';

/** linear_ew: acc = x·wᵀ + b, then the epilogue at each [n, o]; the dot product is the part's sum (a workgroup per output when outputs are few and rows long). */
export function linearEw(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { inputs: { x, w, b }, outputs: { results }, expr } = KERNEL_KINDS.linear_ew.read(k);
  const [N, I] = x.shape;
  const O = w.shape[0]!;
  const term = `return ${sh.read(x, `(o / ${u32(O)}) * ${u32(I!)} + r`)} * ${sh.read(w, `(o % ${u32(O)}) * ${u32(I!)} + r`)};`;
  const { lines, outputs } = exprCode({ sh, domain: [N!, O], input: (j) => k.inputs[j]!, i: 'o', acc: 'lin' }, expr);
  const store = [`let lin: f32 = acc${b ? ` + ${sh.read(b, `o % ${u32(O)}`)}` : ''};`, ...lines, ...outputs.map((v, j) => `${sh.write(results[j]!, 'o')} = ${v};`)].join('\n');
  return [partsDispatch(sh, k.name, [{ count: N! * O, length: I!, term, store }])];
}
