import { KERNEL_KINDS, statsEpilogue } from '../../../ir/kernels.ts';
import { exprCode } from '../expr.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { elementwise } from './elementwise.ts';
import { avgPool2d, maxPool2d } from './ops/pool.ts';
import { meanPart, varPart } from './ops/batch-norm.ts';

/**
 * batch_norm_stats: the mean, then (a second dispatch, which reads it) the variance about it with
 * the per-channel and one-element epilogue, then the normalization over x's domain (a third) and
 * its pool (a fourth).
 */
export function batchNormStats(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs: a, inputs: { x, operands }, outputs: { mean, var: v, pooled, results }, expr } = KERNEL_KINDS.batch_norm_stats.read(k);
  const first = new Shader(ctx);
  const second = new Shader(ctx);
  let part = varPart(second, x, mean, v);
  const parts = expr && statsEpilogue(a, expr);
  const ins = [mean, v, ...operands];
  const perChannel = parts ? parts.channel.outputs.length : 0;
  const narrow = perChannel + (parts ? parts.scalar.outputs.length : 0);
  if (parts && narrow) {
    // The running-statistics epilogue, by the thread that stores var[c], after it: it reads var[c]
    // back (its own write) and mean[c] (the first dispatch's). The step counters by channel 0's.
    const { lines, outputs } = exprCode({ sh: second, domain: mean.shape, input: (j) => ins[j]!, i: 'o', prefix: 'e' }, parts.channel);
    const one = exprCode({ sh: second, domain: [], input: (j) => ins[j]!, i: '0u', prefix: 's' }, parts.scalar);
    const counters = one.outputs.length ? [`if (o == 0u) {`, ...one.lines, ...one.outputs.map((e, j) => `${second.write(results[perChannel + j]!, '0u')} = ${e};`), '}'] : [];
    part = { ...part, store: [part.store, ...lines, ...outputs.map((e, j) => `${second.write(results[j]!, 'o')} = ${e};`), ...counters].join('\n') };
  }
  const stats = [partsDispatch(first, `${k.name}.mean`, [meanPart(first, x, mean)]), partsDispatch(second, `${k.name}.var`, [part])];
  if (!parts || parts.wide.outputs.length === 0) return stats;
  // The normalization reads every channel's statistics: a third dispatch, an elementwise kernel
  // over x's domain.
  const ew = { ...k, name: `${k.name}.norm`, kind: 'elementwise', attrs: {}, inputs: ins, outputs: results.slice(narrow), expr: parts.wide };
  const norm = [...stats, ...elementwise({ ...ctx, kernel: ew })];
  if (!pooled || a.pool === undefined) return norm;
  // The pool of the normalized output: a fourth dispatch, the pool's own kernel.
  const pk = { ...k, name: `${k.name}.pool`, kind: a.pool === 'max' ? 'max_pool2d' : 'avg_pool2d', attrs: { kernel: a.poolKernel!, stride: a.poolStride!, padding: a.poolPadding! }, inputs: [results[narrow + a.poolOf!]!], outputs: [pooled], expr: undefined };
  return [...norm, ...(a.pool === 'max' ? maxPool2d : avgPool2d)({ ...ctx, kernel: pk })];
}
