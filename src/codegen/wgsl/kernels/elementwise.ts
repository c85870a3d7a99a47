import { opExpr } from '../../../ir/elementwise.ts';
import { foreachGroups } from '../../../ir/kernels.ts';
import { numel } from '../../../ir/shape.ts';
import { exprCode, type Computed } from '../expr.ts';
import { partsDispatch, type Part } from '../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../shader.ts';

/** A plain elementwise op kernel is the one-step expression of that op over its output. */
export function elementwiseOp(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const expr = opExpr(k.kind, k.attrs, k.inputs.map((s) => s.shape), k.outputs[0]!.shape);
  return elementwise({ ...ctx, kernel: { ...k, expr } });
}

/** `elementwise`: a chain of elementwise steps over the outputs' shape, one thread per element. */
export function elementwise(ctx: KernelCtx, computed?: Computed): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const domain = k.outputs[0]!.shape;
  const { lines, outputs } = exprCode({ sh, domain, input: (j) => k.inputs[j]!, i: 'o', computed }, k.expr!);
  const store = [...lines, ...outputs.map((v, j) => `${sh.write(k.outputs[j]!, 'o')} = ${v};`)].join('\n');
  return [partsDispatch(sh, k.name, [{ count: numel(domain), length: 0, store }])];
}

/**
 * `foreach`: group t is an `elementwise` kernel over its own tensors; one dispatch runs them all,
 * thread o finding its group among the groups' consecutive element ranges (the multi-tensor
 * optimizer update in one launch).
 */
export function foreach(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const { expr, groups } = foreachGroups(ctx.kernel);
  const body: string[] = [];
  let start = 0;
  for (const { inputs, outputs: outs } of groups) {
    const domain = outs[0]!.shape;
    const n = numel(domain);
    const { lines, outputs } = exprCode({ sh, domain, input: (j) => inputs[j]!, i: 'i' }, expr);
    body.push(
      `if (o < ${u32(start + n)}) {`,
      `  let i = o - ${u32(start)};`,
      ...lines.map((l) => `  ${l}`),
      ...outputs.map((v, j) => `  ${sh.write(outs[j]!, 'i')} = ${v};`),
      '  return;',
      '}',
    );
    start += n;
  }
  const part: Part = { count: start, length: 0, store: body.join('\n') };
  return [partsDispatch(sh, ctx.kernel.name, [part])];
}
