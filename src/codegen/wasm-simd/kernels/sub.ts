import { opKernel } from '../expr.ts';

/** a - b, broadcasting. */
export const sub = opKernel;
