import { opKernel } from '../expr.ts';

/** max(x, 0); NaN passes through (see expr.ts). */
export const relu = opKernel;
