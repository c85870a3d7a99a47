import { allElementwise } from '../../../ir/elementwise.ts';
import type { Kernel } from '../../../ir/program.ts';
import { isElementwiseKind, opKernel } from '../expr.ts';
import type { KernelGen } from '../kernel.ts';
import { attention, attentionGrad } from './attention.ts';
import { adaptiveAvgPool2dGrad } from './adaptive-avg-pool2d-grad.ts';
import { adaptiveAvgPool2d } from './adaptive-avg-pool2d.ts';
import { avgPool2dGrad } from './avg-pool2d-grad.ts';
import { avgPool2d } from './avg-pool2d.ts';
import { batchMean } from './batch-mean.ts';
import { batchNormGrad } from './batch-norm-grad.ts';
import { batchNormGradStats } from './batch-norm-grad-stats.ts';
import { batchNormStats } from './batch-norm-stats.ts';
import { batchVar } from './batch-var.ts';
import { convBlockGrad } from './conv-block-grad.ts';
import { convBlock } from './conv-block.ts';
import { conv2dGradInput } from './conv2d-grad-input.ts';
import { conv2dGradWeight } from './conv2d-grad-weight.ts';
import { conv2d } from './conv2d.ts';
import { copy } from './copy.ts';
import { crossEntropyGrad } from './cross-entropy-grad.ts';
import { crossEntropy } from './cross-entropy.ts';
import { elementwise } from './elementwise.ts';
import { embeddingGrad } from './embedding-grad.ts';
import { embedding } from './embedding.ts';
import { foreach } from './foreach.ts';
import { layerNormBackward } from './layer-norm-backward.ts';
import { layerNormEw } from './layer-norm-ew.ts';
import { layerNorm, layerNormGrad } from './layer-norm.ts';
import { linearCrossEntropy } from './linear-cross-entropy.ts';
import { linearEw } from './linear-ew.ts';
import { linearGrad } from './linear-grad.ts';
import { linear } from './linear.ts';
import { logSoftmaxGrad } from './log-softmax-grad.ts';
import { logSoftmax } from './log-softmax.ts';
import { matmul } from './matmul.ts';
import { maxPool2dGrad } from './max-pool2d-grad.ts';
import { maxPool2d } from './max-pool2d.ts';
import { pad } from './pad.ts';
import { permute } from './permute.ts';
import { reshape } from './reshape.ts';
import { slice } from './slice.ts';
import { softmaxCrossEntropy } from './softmax-cross-entropy.ts';
import { softmaxGrad } from './softmax-grad.ts';
import { softmax } from './softmax.ts';
import { sumTo } from './sum-to.ts';
import { sum } from './sum.ts';

/**
 * The generator of every kernel kind but the elementwise ops (whose kernel is their template,
 * compiled by expr.ts): each other op of the op table but the leaves, `copy` (state write-back),
 * and the fused kinds of src/ir/kernels.ts. One file per kind.
 */
const kernelGens: Record<string, KernelGen> = {
  copy,
  reshape,
  permute,
  slice,
  pad,
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
  batch_mean: batchMean,
  batch_var: batchVar,
  batch_norm_grad: batchNormGrad,
  layer_norm: layerNorm,
  layer_norm_grad: layerNormGrad,
  embedding,
  embedding_grad: embeddingGrad,
  log_softmax: logSoftmax,
  log_softmax_grad: logSoftmaxGrad,
  softmax,
  softmax_grad: softmaxGrad,
  cross_entropy: crossEntropy,
  cross_entropy_grad: crossEntropyGrad,
  // Fused kinds (src/ir/kernels.ts).
  elementwise,
  foreach,
  linear_ew: linearEw,
  linear_grad: linearGrad,
  layer_norm_ew: layerNormEw,
  layer_norm_backward: layerNormBackward,
  softmax_cross_entropy: softmaxCrossEntropy,
  linear_cross_entropy: linearCrossEntropy,
  conv_block: convBlock,
  conv_block_grad: convBlockGrad,
  batch_norm_stats: batchNormStats,
  batch_norm_grad_stats: batchNormGradStats,
  attention,
  attention_grad: attentionGrad,
};

/** The generator of a kernel's kind, if this backend has one. */
export function kernelGen(k: Pick<Kernel, 'kind' | 'attrs'>): KernelGen | undefined {
  return kernelGens[k.kind] ?? (isElementwiseKind(k.kind, k.attrs) ? opKernel : undefined);
}

/** Kinds this backend compiles. */
export function supportedKinds(): string[] {
  return [...Object.keys(kernelGens), ...allElementwise().map((d) => d.name)];
}
