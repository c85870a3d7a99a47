import { KERNEL_KINDS, splitLinearCrossEntropy } from '../../../ir/kernels.ts';
import { linearGrad } from './linear-grad.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { crossEntropyParts } from './softmax-cross-entropy.ts';

/**
 * linear_cross_entropy as two dispatches: the logits (written: an output of the step), then the
 * loss and dlogits from them. The loss is a mean over every row, so computing it in the logits'
 * dispatch would need a grid-wide barrier that WGSL does not have.
 */
export function linearCrossEntropy(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs, inputs: { x, w, b, labels }, outputs: { logits, loss, dlogits } } = KERNEL_KINDS.linear_cross_entropy.read(k);
  const [N, I] = x.shape;
  const K = w.shape[0]!;
  const lin = new Shader(ctx);
  const term = `return ${lin.read(x, `(o / ${u32(K)}) * ${u32(I!)} + r`)} * ${lin.read(w, `(o % ${u32(K)}) * ${u32(I!)} + r`)};`;
  const store = `${lin.write(logits, 'o')} = acc${b ? ` + ${lin.read(b, `o % ${u32(K)}`)}` : ''};`;
  const ce = new Shader(ctx);
  const forward = [
    partsDispatch(lin, `${k.name}.logits`, [{ count: N! * K, length: I!, term, store }]),
    partsDispatch(ce, `${k.name}.loss`, crossEntropyParts(ce, logits, labels, loss, dlogits, attrs.gradScale)),
  ];
  if (!attrs.backward) return forward;
  // The layer's linear_grad from dlogits, as its own kernel's dispatches.
  const { backward: g } = splitLinearCrossEntropy(k, (o) => o);
  return [...forward, ...linearGrad({ ...ctx, kernel: { ...k, ...g, name: `${k.name}.grad`, expr: g.expr } })];
}
