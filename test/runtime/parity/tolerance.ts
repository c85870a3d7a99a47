import type { Slice } from '../../../src/ir/program.ts';
import { sliceOf } from '../../../src/runtime/reference/program.ts';

/**
 * The error of `got` against the oracle `want`: max |got - want| / max(|want|, floor), with
 * floor = max(`peakShare` (1%) of want's largest magnitude, 1e-3·scale). Relative per element, except that
 * tiny elements are judged against the floor: an f32 sum of n terms is off by about √n·2^-24 of
 * the terms' magnitudes, so an element that cancels to near zero (a gradient summed over a batch)
 * has no meaningful relative error of its own. `scale` is the magnitude of what was summed
 * (kernelScale): a bias feeding a batch norm has a gradient that is exactly zero but
 * for rounding (~1e-8 here), and only such a scale can judge it; with a 1e-4 bound the floor
 * allows 1e-7·scale absolute.
 *
 * `spread`, when given, is per element how far the oracle itself moves under rounding-sized
 * changes (run in f64 instead of f32, or with its inputs jittered by 1e-6): the element's own
 * sensitivity to rounding. An element may differ by SPREAD_FACTOR times that before the 1e-4 is
 * charged. It matters after an optimizer step: Adam moves a weight by lr·g/(|g| + eps) whatever
 * g's size, so a gradient that cancels to 1e-8 (f32 and f64 oracles already 20% apart) moves
 * its weight by an amount no two f32 backends agree on.
 */
export function parityError(got: ArrayLike<number>, want: ArrayLike<number>, opts: { scale?: number; spread?: ArrayLike<number>; peakShare?: number } = {}): { error: number; at: number } {
  const { scale = 0, spread, peakShare = 1e-2 } = opts;
  if (got.length !== want.length) return { error: Infinity, at: -1 };
  const floor = Math.max(peak(want) * peakShare, scale * 1e-3, 1e-30);
  let error = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const slack = spread ? SPREAD_FACTOR * spread[i]! : 0;
    const e = Math.max(0, Math.abs(got[i]! - want[i]!) - slack) / Math.max(Math.abs(want[i]!), floor);
    if (Number.isNaN(e)) return { error: Infinity, at: i };
    if (e > error) {
      error = e;
      at = i;
    }
  }
  return { error, at };
}

/**
 * How many times the oracle's own spread an element may differ by, on top of the 1e-4: a backend
 * that sums in f32 rounds more often than the oracle, which stores f32 but accumulates in f64.
 */
export const SPREAD_FACTOR = 10;

/**
 * parityError's `scale` for one output of a kernel run on `arena`: the largest input magnitude
 * times √n, n the number of input elements per output element (1 for elementwise kernels; the
 * batch·positions a bias gradient sums). An f32 sum of n terms rounds by about √n·2^-24 of their
 * magnitude: a gradient that cancels to zero but for rounding (a bias feeding a batch norm) is
 * off by that much on any two backends that sum in different orders.
 */
export function kernelScale(arena: Float32Array, inputs: readonly Slice[], output: Slice): number {
  const numelOf = (s: Slice) => s.shape.reduce((a, b) => a * b, 1);
  const terms = Math.max(1, ...inputs.map(numelOf)) / Math.max(1, numelOf(output));
  return Math.max(...inputs.map((s) => peak(sliceOf(arena, s)))) * Math.sqrt(Math.max(1, terms));
}

/** The largest magnitude in `xs`. */
export function peak(xs: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
}
