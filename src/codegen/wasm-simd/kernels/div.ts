import { mapKernel } from '../map.ts';

/** a / b, broadcasting (IEEE: x/0 is ±inf or NaN, as in the reference). */
export const div = mapKernel((e, [a, b]) => e.vdiv(a!, b!));
