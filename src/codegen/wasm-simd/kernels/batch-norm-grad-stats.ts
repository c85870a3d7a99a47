import { splitFirst } from '../../../ir/expr.ts';
import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { emitExpr, exprInLoop } from '../expr.ts';
import { ats, type At, type KernelCtx } from '../kernel.ts';
import { emitReduce, type Operand, type RowFill } from '../map.ts';
import type { Attrs } from '../../../ir/graph.ts';
import { poolWindow } from '../../../ir/ops/pool.ts';
import type { Fn, Local, X } from '../emitter.ts';
import { avgPoolGradPlane } from './avg-pool2d-grad.ts';
import { maxPoolGradPlane } from './max-pool2d-grad.ts';
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
  const { attrs: a, inputs: { g, x, mean, var: v, gamma, gPooled, poolIn }, outputs, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(k);
  const all: [string, At | undefined][] = [['gamma', outputs.dgamma], ['beta', outputs.dbeta], ['mean', outputs.dmean], ['var', outputs.dvar]];
  const wanted = all.filter((w): w is [string, At] => w[1] !== undefined);
  const terms = wanted.map(([wrt]) => partialTerm(c.e, wrt, a.eps));
  const stats: Operand[] = [{ addr: x.addr, shape: x.shape }, ...[mean, v, gamma].map((t) => ({ addr: t.addr, shape: channelView(x.shape) }))];
  if (a.gExpr && !expr) throw new Error(`${c.k.name}: batch_norm_grad_stats with gExpr has no expression`);
  const parts = expr && a.gExpr ? splitFirst(expr) : undefined;
  const pooled = gPooled && poolFill(c, a, gPooled, poolIn, outputs.pooled!);
  const inputs = pooled ? k.inputs.map((t) => (t === gPooled ? pooled.input : t)) : k.inputs;
  const made = parts && exprInLoop(parts.first, inputs, x.shape);
  emitReduce(c, {
    fill: pooled?.fill,
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
  const kept = pooled ? k.inputs.map((t) => (t === gPooled ? pooled.kept : t)) : k.inputs;
  if (rest && rest.outputs.length) emitExpr(c, x.shape, rest, { inputs: [...kept, ...wanted.map(([, o]) => o)] }, outputs.results);
}

/**
 * gPool: the pool's backward, made a plane at a time by the partials' pass before its run over
 * the plane (the plane of the pool's input it reads is the one the ReLU's mask reads next, in
 * cache) into the kernel's `pooled` output, which the input gradient's pass reads back. Made
 * again there instead of read, it cost more than the read (LeNet's bn1: 0.49 against 0.43 ms).
 */
function poolFill(c: KernelCtx, a: { gPool?: 'max' | 'avg' } & Attrs, gPooled: At, poolIn: At | undefined, kept: At): { input: At & { filled: true }; kept: At; fill: RowFill } {
  const shape = kept.shape;
  const [, , H, W] = shape as [number, number, number, number];
  const p = poolWindow(a, 'pool');
  const dims = { gShape: gPooled.shape, xShape: shape };
  const fill = (fn: Fn, offset: Local, base: Local): X[] => {
    const pl = fn.i32();
    const plane = [pl.set(c.e.m.i32.div_u(offset.get(), c.e.i32(H * W)))];
    if (a.gPool === 'max') return [...plane, ...maxPoolGradPlane(c.e, fn, p, dims, gPooled.addr, poolIn!.addr, pl, base.get())];
    return [...plane, ...avgPoolGradPlane(c.e, fn, p, dims, gPooled.addr, pl, base.get())];
  };
  return { input: { addr: -1, shape: [1, 1, H, W], filled: true }, kept, fill: { at: kept.addr, fill } };
}
