import { flag } from '../../../../ir/op.ts';
import { batchDims } from '../../../../ir/ops/linear.ts';
import type { Slice } from '../../../../ir/program.ts';
import { numel } from '../../../../ir/shape.ts';
import { partsDispatch } from '../../grid.ts';
import { broadcastIndex, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

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

/**
 * C[m, n] = Σ_k op(A)[m, k]·op(B)[k, n] per batch element; op(A)[m, k] is A[k, m] when transA (A
 * stored [K, M]); batch axes broadcast (torch.matmul), each operand's matrix found from the
 * output's batch index.
 */
export function matmul(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [a, b] = ctx.kernel.inputs;
  const c = ctx.kernel.outputs[0]!;
  const transA = flag(ctx.kernel.attrs, 'transA');
  const transB = flag(ctx.kernel.attrs, 'transB');
  const [M, N] = c.shape.slice(-2) as [number, number];
  const K = transA ? a!.shape.at(-2)! : a!.shape.at(-1)!;
  const batch = c.shape.slice(0, -2);
  const mn = M * N;
  const local = numel(batch) === 1 ? 'o' : `(o % ${u32(mn)})`;
  const m = `(${local} / ${u32(N)})`;
  const n = `(${local} % ${u32(N)})`;
  // The operand's first element of batch element t = o / (M·N).
  const start = (x: Slice, size: number) => (numel(batchDims(x.shape)) === 1 ? '' : `(${broadcastIndex(`(o / ${u32(mn)})`, batchDims(x.shape), batch)}) * ${u32(size)} + `);
  const A = start(a!, M * K) + (transA ? `r * ${u32(M)} + ${m}` : `${m} * ${u32(K)} + r`);
  const B = start(b!, K * N) + (transB ? `${n} * ${u32(K)} + r` : `r * ${u32(N)} + ${n}`);
  const term = `return ${sh.read(a!, A)} * ${sh.read(b!, B)};`;
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(c.shape), length: K, term, store: `${sh.write(c, 'o')} = acc;` }])];
}
