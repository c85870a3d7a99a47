import { opKernel } from '../expr.ts';

/** sqrt(x), f32x4.sqrt: correctly rounded, as IEEE requires. */
export const sqrt = opKernel;
