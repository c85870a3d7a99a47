import { mapKernel } from '../map.ts';

/** a + b, broadcasting. */
export const add = mapKernel((e, [a, b]) => e.vadd(a!, b!));
