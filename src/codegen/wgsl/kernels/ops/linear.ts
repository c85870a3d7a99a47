import { flag } from '../../../../ir/op.ts';
import { partsDispatch } from '../../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

/** y[n, o] = b[o] + Σ_i x[n, i]·w[o, i], w [out, in] as in PyTorch. */
export function linear(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [x, w, b] = ctx.kernel.inputs;
  const y = ctx.kernel.outputs[0]!;
  const [N, O] = y.shape;
  const I = x!.shape[1]!;
  const term = `return ${sh.read(x!, `(o / ${u32(O!)}) * ${u32(I)} + r`)} * ${sh.read(w!, `(o % ${u32(O!)}) * ${u32(I)} + r`)};`;
  const bias = b ? ` + ${sh.read(b, `o % ${u32(O!)}`)}` : '';
  return [partsDispatch(sh, ctx.kernel.name, [{ count: N! * O!, length: I, term, store: `${sh.write(y, 'o')} = acc${bias};` }])];
}

/** C[m, n] = Σ_k op(A)[m, k]·op(B)[k, n]; op(A)[m, k] is A[k, m] when transA (A stored [K, M]). */
export function matmul(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [a, b] = ctx.kernel.inputs;
  const c = ctx.kernel.outputs[0]!;
  const transA = flag(ctx.kernel.attrs, 'transA');
  const transB = flag(ctx.kernel.attrs, 'transB');
  const [M, N] = c.shape;
  const K = transA ? a!.shape[0]! : a!.shape[1]!;
  const m = `(o / ${u32(N!)})`;
  const n = `(o % ${u32(N!)})`;
  const A = transA ? `r * ${u32(M!)} + ${m}` : `${m} * ${u32(K)} + r`;
  const B = transB ? `${n} * ${u32(K)} + r` : `r * ${u32(N!)} + ${n}`;
  const term = `return ${sh.read(a!, A)} * ${sh.read(b!, B)};`;
  return [partsDispatch(sh, ctx.kernel.name, [{ count: M! * N!, length: K, term, store: `${sh.write(c, 'o')} = acc;` }])];
}
