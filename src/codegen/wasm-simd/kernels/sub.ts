import { mapKernel } from '../map.ts';

/** a - b, broadcasting. */
export const sub = mapKernel((e, [a, b]) => e.vsub(a!, b!));
