import { opKernel } from '../expr.ts';

/** (x - mean)·r·gamma + beta per channel, r = 1/sqrt(var + eps). */
export const batchNorm = opKernel;
