import { mapKernel } from '../map.ts';

/** g where the relu output y > 0, else 0: a mask from the comparison, and-ed with g. */
export const reluGrad = mapKernel((e, [g, y]) => e.m.v128.and(g!, e.m.f32x4.gt(y!, e.vzero())));
