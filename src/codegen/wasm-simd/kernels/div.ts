import { opKernel } from '../expr.ts';

/** a / b, broadcasting (IEEE: x/0 is ±inf or NaN, as in the reference). */
export const div = opKernel;
