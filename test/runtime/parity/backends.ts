import type { Graph } from '../../../src/ir/graph.ts';
import type { Program, Slice } from '../../../src/ir/program.ts';
import type { Target } from '../../../src/ir/target.ts';
import type { Backend, StepSource } from '../../../src/runtime/backend.ts';
import { afterAll, beforeAll, describe } from 'vitest';
import { wasm } from './wasm.ts';

// The comparison rules live in tolerance.ts (no vitest there: the fuzzer's CLI uses them too).
export { kernelScale, parityError, peak, SPREAD_FACTOR } from './tolerance.ts';

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
