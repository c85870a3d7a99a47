import { opKernel } from '../expr.ts';

/** Broadcast to a larger shape: the map's broadcasting does it all. */
export const expand = opKernel;
