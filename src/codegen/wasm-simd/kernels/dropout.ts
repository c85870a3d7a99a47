import { opKernel } from '../expr.ts';

/** Inverted dropout with the reference's counter-based mask, bit for bit (see expr.ts). Inputs (x, step). */
export const dropout = opKernel;
