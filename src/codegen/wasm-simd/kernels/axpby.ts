import { opKernel } from '../expr.ts';

/** alpha·a + beta·b: moments, momentum buffers, running statistics. */
export const axpby = opKernel;
