import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Graph } from '../../../src/ir/graph.ts';
import type { Program } from '../../../src/ir/program.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { modelGraphs, randomFeeds, randomModel, sampleGraph, SAMPLES } from '../../passes/helpers.ts';
import { PARITY_BACKENDS, parityError, peak, type ParityBackend } from './backends.ts';

// Every kernel of the compiled (fused, planned) Programs of the samples and of random models,
// one at a time: the reference runs the Program up to the kernel, the backend runs that kernel
// alone over the same arena, and the kernel's outputs must agree within 1e-4 (parityError, scaled
// by the kernel's largest input).
// Checking each kernel from the oracle's own arena keeps one kernel's rounding from being
// charged to the next.

const SEED = 5;
const STEP = 3;
const BATCH = 4;

interface Subject {
  name: string;
  graph: () => Promise<Graph>;
}

const subjects: Subject[] = [
  ...SAMPLES.flatMap((s) => (['train', 'eval'] as const).map((stage) => ({ name: `${s} ${stage}`, graph: () => sampleGraph(s, stage, BATCH) }))),
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((seed) => {
    const m = randomModel(seed);
    return { name: `random ${seed}: ${m.describe}`, graph: async () => modelGraphs(m.make, m.input, 3).train };
  }),
];

/** The arena before each kernel, and the feeds, from the reference executor. */
function referenceArenas(p: Program, g: Graph): Float32Array[] {
  const { feeds, state } = randomFeeds(g, SEED);
  const arena = newArena(p);
  for (const s of p.state) sliceOf(arena, s.slice).set(state.get(s.name)!);
  for (const [name, s] of Object.entries(p.inputs)) sliceOf(arena, s).set(name === 'step' ? [STEP] : feeds[name]!);
  const before: Float32Array[] = [];
  for (const k of p.kernels) {
    before.push(Float32Array.from(arena));
    executeProgram({ ...p, kernels: [k] }, arena, { seed: SEED });
  }
  before.push(Float32Array.from(arena));
  return before;
}

for (const make of PARITY_BACKENDS) {
  describe('kernel parity on compiled programs', async () => {
    const backend: ParityBackend = await make();
    let why: string | undefined;
    beforeAll(async () => {
      why = await backend.unavailable();
    });
    afterAll(() => backend.close());

    it.each(subjects.map((s) => [s.name, s] as const))(`${backend.name}: %s`, async (_, s) => {
      if (why) return void console.warn(`skipped: ${why}`);
      const g = await s.graph();
      const p = compileProgram(g);
      const arenas = referenceArenas(p, g);
      const failures: string[] = [];
      for (const [i, k] of p.kernels.entries()) {
        const got = await backend.runProgram({ ...p, kernels: [k] }, [{ offset: 0, data: arenas[i]! }], k.outputs, { seed: SEED, step: STEP });
        const scale = Math.max(...k.inputs.map((s) => peak(sliceOf(arenas[i]!, s))));
        k.outputs.forEach((o, j) => {
          const want = sliceOf(arenas[i + 1]!, o);
          const { error, at } = parityError(got[j]!, want, scale);
          if (!(error <= 1e-4)) failures.push(`${k.name} (${k.kind}) output ${j} [${o.shape}]: error ${error.toExponential(2)} at ${at}: ${got[j]![at]} vs ${want[at]}`);
        });
      }
      expect(failures).toEqual([]);
    });
  });
}
