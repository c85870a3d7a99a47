import { expect, it } from 'vitest';
import type { Graph } from '../../../src/ir/graph.ts';
import type { Program } from '../../../src/ir/program.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { modelGraphs, randomFeeds, randomModel, sampleGraph, SAMPLES } from '../../passes/helpers.ts';
import { describeEachBackend, kernelScale, parityError } from './backends.ts';

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
  // Seeds chosen so that together they reach every variant of every fused kind the fusion pass
  // makes from randomModel's layers (41, counting conv_block_grad's saved/pool/act/fold/dx).
  ...[1, 2, 11, 12, 19, 21, 25, 28, 32, 37, 40, 45, 55, 60].flatMap((seed) => {
    const m = randomModel(seed);
    return (['train', 'eval'] as const).map((stage) => ({ name: `random ${seed} ${stage}: ${m.describe}`, graph: async () => modelGraphs(m.make, m.input, 3)[stage] }));
  }),
];

/** Kinds the compiled programs above never use, as hand-made one-kernel programs. */
function handMade(): { name: string; program: Program }[] {
  const slice = (offset: number, shape: number[], value: string) => ({ offset, bytes: 4 * Math.max(1, shape.reduce((a, b) => a * b, 1)), shape, value });
  const logits = slice(0, [5, 4], 'logits');
  const labels = slice(256, [5], 'labels');
  const loss = slice(512, [], 'loss');
  const dlogits = slice(768, [5, 4], 'dlogits');
  const base = { stage: 'train' as const, batchSize: 5, state: [], inputs: { x: logits, labels }, outputs: {}, constants: [], memory: { arenaBytes: 1024, naiveBytes: 1024, lowerBoundBytes: 1024 } };
  const sce = (grad: boolean) => ({ name: 'k0_sce', kind: 'softmax_cross_entropy', ops: ['cross_entropy'], attrs: { grad, gradScale: 0.5 }, inputs: [logits, labels], outputs: grad ? [loss, dlogits] : [loss] });
  return [
    { name: 'softmax_cross_entropy with its gradient', program: { ...base, kernels: [sce(true)] } },
    { name: 'softmax_cross_entropy, loss only', program: { ...base, kernels: [sce(false)] } },
    { name: 'copy', program: { ...base, kernels: [{ name: 'k0_copy', kind: 'copy', ops: [], attrs: {}, inputs: [logits], outputs: [slice(768, [5, 4], 'copy')] }] } },
  ];
}

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

describeEachBackend('kernel parity on compiled programs', (backend, skipped) => {
  it.each(subjects.map((s) => [s.name, s] as const))(`${backend.name}: %s`, async (_, s) => {
    if (skipped()) return;
    const g = await s.graph();
    const p = compileProgram(g, backend.target());
    const arenas = referenceArenas(p, g);
    const failures: string[] = [];
    for (const [i, k] of p.kernels.entries()) {
      const got = await backend.runProgram({ ...p, kernels: [k] }, [{ offset: 0, data: arenas[i]! }], k.outputs, { seed: SEED, step: STEP });
      k.outputs.forEach((o, j) => {
        const want = sliceOf(arenas[i + 1]!, o);
        const { error, at } = parityError(got[j]!, want, { scale: kernelScale(arenas[i]!, k.inputs, o) });
        if (!(error <= 1e-4)) failures.push(`${k.name} (${k.kind}) output ${j} [${o.shape}]: error ${error.toExponential(2)} at ${at}: ${got[j]![at]} vs ${want[at]}`);
      });
    }
    expect(failures).toEqual([]);
  });

  it.each(handMade().map((h) => [h.name, h.program] as const))(`${backend.name}: %s`, async (_, p) => {
    if (skipped()) return;
    const arena = newArena(p);
    arena.set(Array.from({ length: 20 }, (_, i) => Math.sin(i) * 3));
    sliceOf(arena, p.inputs.labels!).set([3, 0, 1, 3, 2]);
    const want = Float32Array.from(arena);
    executeProgram(p, want, { seed: SEED });
    const k = p.kernels[0]!;
    const got = await backend.runProgram(p, [{ offset: 0, data: arena }], k.outputs, { seed: SEED });
    k.outputs.forEach((o, j) => expect(parityError(got[j]!, sliceOf(want, o)).error).toBeLessThanOrEqual(1e-4));
  });

  // Fuzz seeds 123 and 139: a Program's step input is dead from its last read on (under SGD,
  // from the start), and the planner gives its 4 bytes to a later one-element value (there, a
  // BatchNorm2d(1) mean gradient). WGSL read that value from the step uniform, since it has the
  // step's offset and size; it must come from the arena. Here k0 writes such a value over the
  // step and k1 reads it. Exact: f32 additions of dyadic fractions.
  it(`${backend.name}: a one-element value in the step's reused bytes is read from the arena, not the step`, async () => {
    if (skipped()) return;
    const slice = (offset: number, shape: number[], value: string) => ({ offset, bytes: 4 * Math.max(1, shape.reduce((a, b) => a * b, 1)), shape, value });
    const step = slice(0, [], 'step');
    const reused = slice(0, [1], '%39');
    const a = slice(256, [4], 'a');
    const b = slice(512, [1], 'b');
    const out = slice(768, [4], 'out');
    const p: Program = {
      stage: 'train',
      batchSize: 1,
      state: [],
      inputs: { step },
      outputs: {},
      constants: [],
      kernels: [
        { name: 'k0_add', kind: 'add', ops: ['add'], attrs: {}, inputs: [b, b], outputs: [reused] },
        { name: 'k1_add', kind: 'add', ops: ['add'], attrs: {}, inputs: [a, reused], outputs: [out] },
      ],
      memory: { arenaBytes: 1024, naiveBytes: 1280, lowerBoundBytes: 1024 },
    };
    const arena = newArena(p);
    sliceOf(arena, a).set([1, 2, 3, 4]);
    sliceOf(arena, b).set([0.125]);
    const got = await backend.runProgram(p, [{ offset: 0, data: arena }], [reused, out], { seed: SEED, step: STEP });
    expect(Array.from(got[0]!)).toEqual([0.25]);
    expect(Array.from(got[1]!)).toEqual([1.25, 2.25, 3.25, 4.25]);
  });
});
