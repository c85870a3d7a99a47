import { opKernel } from '../expr.ts';

/** -x. */
export const neg = opKernel;
