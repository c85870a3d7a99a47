import { splitFirst } from '../../../ir/expr.ts';
import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { exprCode, type Computed } from '../expr.ts';
import { poolWindow } from '../../../ir/ops/pool.ts';
import { poolGradFn } from './ops/pool.ts';
import { partsDispatch } from '../grid.ts';
import { elementwise } from './elementwise.ts';
import { Shader, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { gradPart, type GradSource } from './ops/batch-norm.ts';

/**
 * batch_norm_grad_stats: every per-channel partial as an independent part of one dispatch. With
 * gExpr each term computes g from the kernel's inputs, as the epilogue does.
 */
export function batchNormGradStats(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs: a, inputs: { g, x, mean, var: v, gamma, gPooled, poolIn }, outputs, expr } = KERNEL_KINDS.batch_norm_grad_stats.read(k);
  if (a.gExpr && !expr) throw new Error(`${k.name}: batch_norm_grad_stats with gExpr has no expression`);
  const sh = new Shader(ctx);
  const parts = expr && a.gExpr ? splitFirst(expr) : undefined;
  // With gPool the expression's gPooled input is the pool's backward, gathered at the element.
  const pooled = gPooled && k.inputs.indexOf(gPooled);
  const computed: Computed | undefined =
    a.gPool && gPooled ? (j, env) => (j === pooled ? `${poolGradFn(env.sh, a.gPool!, poolWindow(k.attrs, 'pool'), gPooled, x.shape, poolIn)}(${env.i})` : undefined) : undefined;
  const gSrc: GradSource = parts
    ? (i) => {
        const { lines, outputs: [value] } = exprCode({ sh, domain: x.shape, input: (j) => k.inputs[j]!, i, prefix: 'p', computed }, parts.first);
        return { lines, value: value! };
      }
    : g!;
  const wanted = [['gamma', outputs.dgamma], ['beta', outputs.dbeta], ['mean', outputs.dmean], ['var', outputs.dvar]] as const;
  const partials = wanted.flatMap(([wrt, out]) => (out ? [gradPart(sh, wrt, a.eps, [gSrc, x, mean, v, gamma], out)] : []));
  const first = partsDispatch(sh, k.name, partials);
  let rest = parts ? parts.rest : expr;
  let results = outputs.results;
  if (outputs.pooled && pooled !== undefined) {
    // The pool's backward is an output too: the epilogue's dispatch writes it where it gathers it.
    const steps = [...(rest?.steps ?? []), { prim: 'input' as const, input: pooled }];
    rest = { steps, outputs: [...(rest?.outputs ?? []), steps.length - 1] };
    results = [...results, outputs.pooled];
  }
  if (!rest || rest.outputs.length === 0) return [first];
  // The epilogue reads the partials every channel's workgroup wrote: a second dispatch, an
  // elementwise kernel over x's domain.
  const written = [outputs.dgamma, outputs.dbeta, outputs.dmean, outputs.dvar].filter((o) => o !== undefined);
  const ew = { ...k, name: `${k.name}.dx`, kind: 'elementwise', attrs: {}, inputs: [...k.inputs, ...written], outputs: results, expr: rest };
  return [first, ...elementwise({ ...ctx, kernel: ew }, computed)];
}
