import { mapKernel } from '../map.ts';

/**
 * max(x, 0) as f32x4.pmax(x, 0) = (x < 0 ? 0 : x), a single maxps: NaN < 0 is false, so NaN
 * passes through as with torch.relu and the reference's Math.max.
 */
export const relu = mapKernel((e, [x]) => e.m.f32x4.pmax(x!, e.vzero()));
