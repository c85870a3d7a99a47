import { opKernel } from '../expr.ts';

/** g[c]·2(x - mean[c])/count: the gradient of the variance flowing back to x. */
export const batchVarGrad = opKernel;
