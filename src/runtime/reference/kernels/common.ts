import type { Node } from '../../../ir/graph.ts';
import { strides, type Shape } from '../../../ir/shape.ts';

export type Arr = Float32Array | Float64Array;

export interface KernelContext {
  /** The run's seed: keys the counter-based RNG (dropout masks). */
  seed: number;
}

/** Writes node's output into `out` (already allocated, zero-filled not guaranteed). */
export type RefKernel = (out: Arr, ins: readonly Arr[], node: Node, inShapes: readonly Shape[], ctx: KernelContext) => void;

/**
 * Strides for reading a tensor of shape `from` as if broadcast to `to` (NumPy rules: shapes are
 * aligned on the right, size-1 and missing dimensions repeat, i.e. stride 0).
 */
export function broadcastStrides(from: Shape, to: Shape): number[] {
  const s = strides(from);
  const lead = to.length - from.length;
  return to.map((_, d) => (d < lead || from[d - lead] === 1 ? 0 : s[d - lead]!));
}

/** Offset of row-major element `flat` of `shape` in a tensor laid out with `st` (from broadcastStrides). */
export function offsetOf(flat: number, shape: Shape, st: readonly number[]): number {
  let off = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    off += (flat % n) * st[d]!;
    flat = Math.floor(flat / n);
  }
  return off;
}

/**
 * Scatter-style kernels (sums, transposed convolutions, pool backward) add into an f64 scratch
 * and store once: each output is rounded a single time, so the oracle is at least as exact as
 * any f32 backend, whatever order that backend sums in.
 */
export function storeFrom(out: Arr, acc: Float64Array): void {
  out.set(acc);
}
