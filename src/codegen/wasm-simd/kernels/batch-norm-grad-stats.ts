import { splitFirst } from '../../../ir/expr.ts';
import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { emitExpr, exprInLoop } from '../expr.ts';
import { ats, type At, type KernelCtx } from '../kernel.ts';
import { emitReduce, type Operand } from '../map.ts';
import { partialTerm } from './batch-norm-grad.ts';
import { allButChannel, channelView } from './channels.ts';

/**
 * batch_norm_grad_stats (src/ir/kernels.ts): every per-channel partial in one pass over g and x,
 * each summed in the order its op kernel sums it alone (emitReduce), so the bits are the unfused
 * graph's. With gExpr, g is never read: the pass computes it at each vector from its operands
 * (a ReLU's mask of the residual sum, say), and so does the epilogue.
 */
export function batchNormGradStats(c: KernelCtx): void {
  const k = ats(c);
  const { attrs: a, inputs: { g, x, mean, var: v, gamma }, outputs, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(k);
  const all: [string, At | undefined][] = [['gamma', outputs.dgamma], ['beta', outputs.dbeta], ['mean', outputs.dmean], ['var', outputs.dvar]];
  const wanted = all.filter((w): w is [string, At] => w[1] !== undefined);
  const terms = wanted.map(([wrt]) => partialTerm(c.e, wrt, a.eps));
  const stats: Operand[] = [{ addr: x.addr, shape: x.shape }, ...[mean, v, gamma].map((t) => ({ addr: t.addr, shape: channelView(x.shape) }))];
  if (a.gExpr && !expr) throw new Error(`${c.k.name}: batch_norm_grad_stats with gExpr has no expression`);
  const parts = expr && a.gExpr ? splitFirst(expr) : undefined;
  const made = parts && exprInLoop(parts.first, k.inputs, x.shape);
  emitReduce(c, {
    domain: x.shape,
    reduced: allButChannel(x.shape),
    out: wanted.map(([, o]) => o.addr),
    ins: made ? [...stats, ...made.ins] : [{ addr: g!.addr, shape: x.shape }, ...stats],
    f: (vals, fn) => {
      if (!made) return terms.map((t) => t(vals.map((val) => c.e.copyExpr(val)), fn));
      // g at this vector, once, then every partial's term over (g, x, mean, var, gamma).
      const { stmts, value } = made.at(c.e, fn, vals.slice(4));
      return { stmts, terms: terms.map((t) => t([value, ...vals.slice(0, 4)].map((val) => c.e.copyExpr(val)), fn)) };
    },
  });
  // The epilogue (the input gradient from the partials): one more phase over x's domain.
  const rest = parts ? parts.rest : expr;
  if (rest && rest.outputs.length) emitExpr(c, x.shape, rest, { inputs: [...k.inputs, ...wanted.map(([, o]) => o)] }, outputs.results);
}
