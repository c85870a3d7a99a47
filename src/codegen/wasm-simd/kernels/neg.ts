import { mapKernel } from '../map.ts';

export const neg = mapKernel((e, [x]) => e.m.f32x4.neg(x!));
