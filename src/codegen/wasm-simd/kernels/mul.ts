import { mapKernel } from '../map.ts';

/** a · b, broadcasting. */
export const mul = mapKernel((e, [a, b]) => e.vmul(a!, b!));
