import type { Graph } from '../../../src/ir/graph.ts';
import type { Program, Slice } from '../../../src/ir/program.ts';
import type { Target } from '../../../src/ir/target.ts';
import type { Backend, StepSource } from '../../../src/runtime/backend.ts';
import { afterAll, beforeAll, describe } from 'vitest';
import { sliceOf } from '../../../src/runtime/reference/program.ts';
import { wasm } from './wasm.ts';

/**
 * A backend under the parity suite. The suite is written once and run against every entry here:
 * a backend joins by adding one.
 */
export interface ParityBackend {
  readonly name: string;
  /** Why it cannot run on this machine, or undefined when it can (checked once per file). */
  unavailable(): Promise<string | undefined>;
  /**
   * Runs one step of `program` over a fresh zeroed arena (constants written) after writing
   * `feeds` (byte offset, data: any range of the arena) with the step counter `step`; returns `reads`.
   */
  runProgram(program: Program, feeds: readonly { offset: number; data: Float32Array }[], reads: readonly Slice[], opts: { seed: number; step?: number }): Promise<Float32Array[]>;
  /** What it compiles for (after `unavailable`, which opens a device). */
  target(): Target;
  /** A training backend over `steps`, lowering each graph with `lower` for its target. */
  open(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, lower: (g: Graph, target: Target) => Program): Promise<Backend>;
  /** Releases what the backend holds for the whole file. */
  close(): Promise<void>;
}

async function webgpu(): Promise<ParityBackend> {
  const { openGpu } = await import('../../../src/runtime/webgpu/device.ts');
  const { runProgramOnce } = await import('../webgpu/run-program.ts');
  const { WebGpuBackend } = await import('../../../src/runtime/webgpu/backend.ts');
  const { compilingWgslLoader, deviceTarget } = await import('../../../src/runtime/webgpu/compile.ts');
  let gpu: Awaited<ReturnType<typeof openGpu>> | undefined;
  let why: string | undefined;
  return {
    name: 'webgpu',
    async unavailable() {
      if (gpu || why) return why;
      try {
        gpu = await openGpu();
      } catch (e) {
        // CI installs what Dawn needs (.ci/run): there, no adapter is a failure, not a skip.
        if (process.env.KILN_REQUIRE_WEBGPU) throw e;
        why = (e as Error).message;
      }
      return why;
    },
    target: () => deviceTarget(gpu!),
    runProgram: (p, feeds, reads, opts) => runProgramOnce(gpu!, p, feeds, reads, opts),
    async open(steps, initial, batchSize, seed, lower) {
      const b = new WebGpuBackend(gpu!, compilingWgslLoader(steps, seed, deviceTarget(gpu!), lower), initial, batchSize, { sharedDevice: true });
      await b.flush();
      return b;
    },
    async close() {
      gpu?.device.destroy();
      gpu = undefined;
    },
  };
}

/** Every backend the suite runs against (the reference backend is the oracle, not an entry). */
export const PARITY_BACKENDS: readonly (() => Promise<ParityBackend>)[] = [wasm(), wasm(false), webgpu];

/**
 * Declares `suite` once for every backend of the registry. Inside a test, `skipped()` is true
 * (and warns why) when the backend cannot run on this machine, asked once per file.
 */
export function describeEachBackend(title: string, suite: (backend: ParityBackend, skipped: () => boolean) => void): void {
  for (const make of PARITY_BACKENDS) {
    describe(title, async () => {
      const backend = await make();
      let why: string | undefined;
      beforeAll(async () => {
        why = await backend.unavailable();
      });
      afterAll(() => backend.close());
      suite(backend, () => {
        if (why) console.warn(`skipped: ${why}`);
        return why !== undefined;
      });
    });
  }
}

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
