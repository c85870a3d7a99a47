import { flag } from '../../../ir/op.ts';
import { batchDims } from '../../../ir/ops/linear.ts';
import { broadcastStrides } from '../../../ir/shape.ts';
import { emitBatchedGemm, emitGemm } from '../gemm.ts';
import type { KernelCtx } from '../kernel.ts';

/**
 * op(a)·op(b) over the last two axes, op = transpose when transA / transB; the form follows the
 * transposes (see gemm.ts). Batch axes (broadcast as torch.matmul's) run one product each.
 */
export function matmul(c: KernelCtx): void {
  const ta = flag(c.k.attrs, 'transA');
  const tb = flag(c.k.attrs, 'transB');
  const out = c.outShape(0);
  const [M, N] = out.slice(-2) as [number, number];
  const [as, bs] = [c.inShape(0), c.inShape(1)];
  const K = ta ? as.at(-2)! : as.at(-1)!;
  const g = { M, N, K, a: c.inAddr(0), aM: ta ? 1 : K, aK: ta ? M : 1, b: c.inAddr(1), bK: tb ? 1 : N, bN: tb ? K : 1, c: c.outAddr(0) };
  const batch = out.slice(0, -2);
  if (batch.every((d) => d === 1)) {
    emitGemm(c, g);
    return;
  }
  // Strides in matrices, scaled to elements.
  const st = (s: readonly number[], size: number) => broadcastStrides(batchDims(s), batch).map((x) => x * size);
  emitBatchedGemm(c, g, { shape: batch, a: st(as, M * K), b: st(bs, K * N) });
}
