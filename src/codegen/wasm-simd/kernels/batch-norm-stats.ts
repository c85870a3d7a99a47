import { KERNEL_KINDS, statsEpilogue } from '../../../ir/kernels.ts';
import { exprBody } from '../expr.ts';
import { ats, derive, type At, type KernelCtx } from '../kernel.ts';
import type { Attrs } from '../../../ir/graph.ts';
import { poolWindow } from '../../../ir/ops/pool.ts';
import type { MapSpec } from '../map.ts';
import { avgPoolPlane } from './avg-pool2d.ts';
import { maxPoolPlane } from './max-pool2d.ts';
import { batchMean } from './batch-mean.ts';
import { batchVar } from './batch-var.ts';

/**
 * batch_norm_stats (src/ir/kernels.ts): the mean, then the variance about it, as two phases of one
 * kernel (the barrier between them is the step's own), then the epilogue as a third. Two passes,
 * as the op kernels make them: a one-pass Σx, Σx² in f32 loses the variance of a channel whose
 * mean is large against its spread, and the second pass mostly hits cache (x is at most a few MB
 * for these layers).
 */
export function batchNormStats(c: KernelCtx): void {
  const { attrs: a, inputs: { x, operands }, outputs: { mean, var: v, pooled, results }, expr } = KERNEL_KINDS.batch_norm_stats.read(ats(c));
  batchMean(derive(c, 'batch_mean', {}, [x], [mean]));
  batchVar(derive(c, 'batch_var', {}, [x, mean], [v]));
  if (!expr) return;
  // The epilogue, one third phase: the running-statistics update over [C] (a few hundred elements
  // at most, on the second thread where there is one) and the step counters beside the
  // normalization over x's domain (and its pool, plane by plane). The parts are independent: none
  // writes in place what another reads (inPlaceAllowed).
  const { channel, scalar, wide } = statsEpilogue(a, expr);
  const src = { inputs: [mean, v, ...operands] };
  const narrow = channel.outputs.length + scalar.outputs.length;
  const counters = results.slice(channel.outputs.length, narrow);
  const after = pooled && a.pool !== undefined ? poolAfter(c, a, results[narrow + a.poolOf!]!, pooled) : undefined;
  c.phase((fn, tid) => [
    ...(channel.outputs.length ? exprBody(c, fn, tid, mean.shape, channel, src, results.slice(0, channel.outputs.length), 1) : []),
    ...(counters.length ? exprBody(c, fn, tid, [], scalar, src, counters, 1) : []),
    ...(wide.outputs.length ? exprBody(c, fn, tid, x.shape, wide, src, results.slice(narrow), 0, after) : []),
  ]);
}

/**
 * The pool of the normalized output y, each plane pooled by the thread that has just written
 * it, after its row (a row of the map is a plane: mean and var are read per channel).
 */
function poolAfter(c: KernelCtx, a: Attrs, y: At, pooled: At): NonNullable<MapSpec['after']> {
  const { e } = c;
  const [, , H, W] = y.shape as [number, number, number, number];
  const p = poolWindow(a, 'pool');
  const dims = { xShape: y.shape, yShape: pooled.shape };
  const plane = a.pool === 'max' ? maxPoolPlane : avgPoolPlane;
  return (fn, offset, length) => {
    if (length % (H * W)) throw new Error(`${c.k.name}: a row of ${length} elements is not whole planes of ${H}×${W}`);
    const [pl, q] = [fn.i32(), fn.i32()];
    const pool = [pl.set(e.add(e.m.i32.div_u(offset.get(), e.i32(H * W)), q.get())), ...plane(e, fn, p, dims, y.addr, pooled.addr, pl)];
    return [e.forc(q, 0, length / (H * W), 1, pool)];
  };
}
