import { batchNormKernels } from './batch-norm.ts';
import type { RefKernel } from './common.ts';
import { conv2dKernels } from './conv2d.ts';
import { elementwiseKernels } from './elementwise.ts';
import { embeddingKernels } from './embedding.ts';
import { layerNormKernels } from './layer-norm.ts';
import { linearKernels } from './linear.ts';
import { poolKernels } from './pool.ts';
import { reduceKernels } from './reduce.ts';
import { reshapeKernels } from './reshape.ts';
import { softmaxKernels } from './softmax.ts';

export type { Arr, KernelContext, RefKernel } from './common.ts';

/**
 * The reference backend's kernel for every op but the leaves (input, param, const), which the
 * executor fills itself. One file per op family, mirroring src/ir/ops.
 */
export const referenceKernels: Record<string, RefKernel> = {
  ...elementwiseKernels,
  ...reshapeKernels,
  ...reduceKernels,
  ...conv2dKernels,
  ...poolKernels,
  ...linearKernels,
  ...batchNormKernels,
  ...layerNormKernels,
  ...embeddingKernels,
  ...softmaxKernels,
};
