import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { emitExpr } from '../expr.ts';
import { ats, type At, type KernelCtx } from '../kernel.ts';
import { emitReduce } from '../map.ts';
import { partialOperands, partialTerm } from './batch-norm-grad.ts';
import { allButChannel } from './channels.ts';

/**
 * batch_norm_grad_stats (src/ir/kernels.ts): every per-channel partial in one pass over g and x,
 * each summed in the order its op kernel sums it alone (emitReduce), so the bits are the unfused
 * graph's.
 */
export function batchNormGradStats(c: KernelCtx): void {
  const { attrs: a, inputs: { g, x, mean, var: v, gamma, operands }, outputs, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(ats(c));
  const ins = [g, x, mean, v, gamma];
  const all: [string, At | undefined][] = [['gamma', outputs.dgamma], ['beta', outputs.dbeta], ['mean', outputs.dmean], ['var', outputs.dvar]];
  const wanted = all.filter((w): w is [string, At] => w[1] !== undefined);
  const terms = wanted.map(([wrt]) => partialTerm(c.e, wrt, a.eps));
  emitReduce(c, {
    domain: x.shape,
    reduced: allButChannel(x.shape),
    out: wanted.map(([, o]) => o.addr),
    ins: partialOperands(ins.map((t) => t.addr), x.shape),
    f: (vals, fn) => terms.map((t) => t(vals.map((v) => c.e.copyExpr(v)), fn)),
  });
  // The epilogue (the input gradient from the partials): one more phase over x's domain.
  if (expr) emitExpr(c, x.shape, expr, { inputs: [...ins, ...operands, ...wanted.map(([, o]) => o)] }, outputs.results);
}
