import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { layerNormRows } from '../../../ir/ops/layer-norm.ts';
import { epilogueAround } from '../expr.ts';
import { ats, derive, type KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';
import { layerNormGradOf } from './layer-norm.ts';

/**
 * layer_norm_backward (src/ir/kernels.ts): dw = Σ g·x̂ and db = Σ g as column sums over the rows
 * (the reduction's fixed order: the same bits on any number of threads), then the row kernel on
 * g·w, then its epilogue (epilogueAround).
 */
export function layerNormBackward(c: KernelCtx): void {
  const k = ats(c);
  const { attrs: { eps, dims, bias }, inputs: { g, x, xhat, w }, outputs: { dw, db, results }, expr } = KERNEL_KINDS.layer_norm_backward.read(k);
  const rows = layerNormRows(x.shape, { dims });
  const flat = (addr: number) => ({ addr, shape: rows });
  emitReduce(c, { domain: rows, reduced: [true, false], out: dw.addr, ins: [flat(g.addr), flat(xhat.addr)], f: ([a, b]) => c.e.vmul(a!, b!) });
  if (bias) emitReduce(c, { domain: rows, reduced: [true, false], out: db!.addr, ins: [flat(g.addr)], f: ([a]) => a! });
  const epilogue = expr && epilogueAround(c, x.shape, expr, results);
  layerNormGradOf(derive(c, 'layer_norm_grad', { eps, dims }, [g, x], [epilogue ? epilogue.acc : results[0]!]), w.addr);
  epilogue?.emit({ inputs: k.inputs });
}
