import type { Node } from '../../../ir/graph.ts';
import type { Shape } from '../../../ir/shape.ts';

export type Arr = Float32Array | Float64Array;

export interface KernelContext {
  /** The run's seed: keys the counter-based RNG (dropout masks). */
  seed: number;
}

/** Writes node's output into `out` (already allocated, zero-filled not guaranteed). */
export type RefKernel = (out: Arr, ins: readonly Arr[], node: Node, inShapes: readonly Shape[], ctx: KernelContext) => void;

/**
 * Scatter-style kernels (sums, transposed convolutions, pool backward) add into an f64 scratch
 * and store once: each output is rounded a single time, so the oracle is at least as exact as
 * any f32 backend, whatever order that backend sums in.
 */
export function storeFrom(out: Arr, acc: Float64Array): void {
  out.set(acc);
}
