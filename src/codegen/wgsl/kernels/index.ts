import { allElementwise } from '../../../ir/elementwise.ts';
import type { Kernel } from '../../../ir/program.ts';
import { isElementwiseKind } from '../expr.ts';
import type { KernelCtx, WgslDispatch } from '../shader.ts';
import { attention, attentionGrad } from './attention.ts';
import { batchNormGradStats } from './batch-norm-grad-stats.ts';
import { batchNormStats } from './batch-norm-stats.ts';
import { convBlockKernel } from './conv-block.ts';
import { convBlockGradKernel } from './conv-block-grad.ts';
import { copy } from './copy.ts';
import { elementwise, elementwiseOp, foreach } from './elementwise.ts';
import { layerNormBackward } from './layer-norm-backward.ts';
import { layerNormEw } from './layer-norm-ew.ts';
import { linearCrossEntropy } from './linear-cross-entropy.ts';
import { linearEw } from './linear-ew.ts';
import { linearGrad } from './linear-grad.ts';
import { batchMean, batchNormGrad, batchVar } from './ops/batch-norm.ts';
import { conv2d, conv2dGradInput, conv2dGradWeight } from './ops/conv2d.ts';
import { embedding, embeddingGrad } from './ops/embedding.ts';
import { layerNorm, layerNormGrad } from './ops/layer-norm.ts';
import { pad, permute, slice } from './ops/layout.ts';
import { linear, matmul } from './ops/linear.ts';
import { adaptiveAvgPool2d, adaptiveAvgPool2dGrad, avgPool2d, avgPool2dGrad, maxPool2d, maxPool2dGrad } from './ops/pool.ts';
import { sum, sumTo } from './ops/reduce.ts';
import { crossEntropy, crossEntropyGrad, logSoftmax, logSoftmaxGrad, softmax, softmaxGrad } from './ops/softmax.ts';
import { softmaxCrossEntropy } from './softmax-cross-entropy.ts';

/** Emits one kernel kind as the dispatches that compute it, in order. */
export type KernelGen = (ctx: KernelCtx) => WgslDispatch[];

/**
 * Every kernel kind a Program may hold but the elementwise ops (whose kernel is their template,
 * elementwiseOp): each other op of the op table but the leaves (plain kinds, kernels/ops/, by op
 * family as src/ir/ops), then `copy` and the fused kinds of src/ir/kernels.ts (one file each).
 */
const WGSL_KERNELS: Readonly<Record<string, KernelGen>> = {
  reshape: copy,
  permute,
  slice,
  pad,
  batch_norm_grad: batchNormGrad,
  batch_mean: batchMean,
  batch_var: batchVar,
  layer_norm: layerNorm,
  layer_norm_grad: layerNormGrad,
  embedding,
  embedding_grad: embeddingGrad,
  sum,
  sum_to: sumTo,
  conv2d,
  conv2d_grad_input: conv2dGradInput,
  conv2d_grad_weight: conv2dGradWeight,
  max_pool2d: maxPool2d,
  max_pool2d_grad: maxPool2dGrad,
  avg_pool2d: avgPool2d,
  avg_pool2d_grad: avgPool2dGrad,
  adaptive_avg_pool2d: adaptiveAvgPool2d,
  adaptive_avg_pool2d_grad: adaptiveAvgPool2dGrad,
  linear,
  matmul,
  log_softmax: logSoftmax,
  log_softmax_grad: logSoftmaxGrad,
  softmax,
  softmax_grad: softmaxGrad,
  cross_entropy: crossEntropy,
  cross_entropy_grad: crossEntropyGrad,
  copy,
  elementwise,
  foreach,
  linear_ew: linearEw,
  linear_grad: linearGrad,
  layer_norm_ew: layerNormEw,
  layer_norm_backward: layerNormBackward,
  softmax_cross_entropy: softmaxCrossEntropy,
  linear_cross_entropy: linearCrossEntropy,
  conv_block: convBlockKernel,
  conv_block_grad: convBlockGradKernel,
  batch_norm_stats: batchNormStats,
  batch_norm_grad_stats: batchNormGradStats,
  attention,
  attention_grad: attentionGrad,
};

/** The generator of a kernel's kind, if this backend has one. */
export function wgslKernel(k: Pick<Kernel, 'kind' | 'attrs'>): KernelGen | undefined {
  return WGSL_KERNELS[k.kind] ?? (isElementwiseKind(k.kind, k.attrs) ? elementwiseOp : undefined);
}

/** Kinds this backend compiles. */
export function supportedKinds(): string[] {
  return [...Object.keys(WGSL_KERNELS), ...allElementwise().map((d) => d.name)];
}
