import type { Shape } from '../../../ir/shape.ts';

// Shared by the batch-norm kernels: channels are axis 1 of [N, C] or [N, C, H, W].

/** The shape a per-channel [C] tensor broadcasts as against x: [1, C, 1, 1] or [1, C]. */
export function channelView(x: Shape): number[] {
  return x.map((d, i) => (i === 1 ? d : 1));
}

/** Elements per channel. */
export function perChannel(x: Shape): number {
  return x.reduce((a, d, i) => (i === 1 ? a : a * d), 1);
}

/** Every axis but the channel axis is summed over. */
export function allButChannel(x: Shape): boolean[] {
  return x.map((_, d) => d !== 1);
}
