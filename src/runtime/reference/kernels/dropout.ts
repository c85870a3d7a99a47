import { num } from '../../../ir/op.ts';
import { Stream, streamKey, uniform } from '../../rng.ts';
import type { RefKernel } from './common.ts';

export const dropoutKernels: Record<string, RefKernel> = {
  // Keeps element i iff uniform(key, i) >= p with key = (seed, DROPOUT + stream, step), so a
  // backend recomputes the same mask from the step alone, and backward (dropout applied to the
  // gradient) reuses it. Kept values are x·(1/(1-p)) like PyTorch's x·mask/(1-p); the scale is
  // rounded to f32 first on f32 arrays, as an f32 backend holds it.
  dropout: (out, [x, stepIn], node, _, ctx) => {
    const p = num(node.attrs, 'p');
    const stream = num(node.attrs, 'stream');
    const step = stepIn![0]!;
    if (!Number.isInteger(step) || step < 0) throw new Error(`dropout: step must be a non-negative integer, got ${step}`);
    const key = streamKey(ctx.seed, Stream.DROPOUT + stream, step);
    const scale = out instanceof Float32Array ? Math.fround(1 / (1 - p)) : 1 / (1 - p);
    for (let i = 0; i < out.length; i++) out[i] = uniform(key, i) >= p ? x![i]! * scale : 0;
  },
};
