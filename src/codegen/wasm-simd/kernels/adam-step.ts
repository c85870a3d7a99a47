import { opKernel } from '../expr.ts';

/** torch.optim.Adam's bias-corrected update (see expr.ts). Inputs (p, m, v, step). */
export const adamStep = opKernel;
