import { opKernel } from '../expr.ts';

/** g where the relu output y > 0, else 0. */
export const reluGrad = opKernel;
