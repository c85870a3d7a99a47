import { describe, expect, it } from 'vitest';
import type { Program } from '../../../src/ir/program.ts';
import { WASM_TARGET } from '../../../src/codegen/wasm-simd/target.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { runProgramOnce } from './run-program.ts';
import { modelGraphs, randomFeeds, randomModel } from '../../passes/helpers.ts';
import { kernelScale, parityError } from '../parity/backends.ts';

// The wasm conv-block fast paths in every form the planner makes of a 2×2/2 max-pooled block:
// the backward reading a stored argmax (with and without ReLU, with the linear layer's input
// gradient folded in), the forward writing it. The shared suite's random models reach some of
// these; these seeds (found by scanning randomModel) reach the rest. Kernel by kernel against the
// reference, each from the reference's own arena, tolerance 1e-4 (parityError).

const SEEDS: Record<number, string> = {
  155: 'argmax stored, ReLU, conv 3×3',
  402: 'argmax stored, ReLU, strided conv',
  410: 'argmax stored, folded linear gradient, no ReLU',
  423: 'argmax stored, folded linear gradient, ReLU',
};

function arenasBefore(p: Program, seed: number, g: Parameters<typeof randomFeeds>[0]): Float32Array[] {
  const { feeds, state } = randomFeeds(g, seed);
  const arena = newArena(p);
  for (const s of p.state) sliceOf(arena, s.slice).set(state.get(s.name)!);
  for (const [name, s] of Object.entries(p.inputs)) sliceOf(arena, s).set(name === 'step' ? [3] : feeds[name]!);
  const before: Float32Array[] = [];
  for (const k of p.kernels) {
    before.push(Float32Array.from(arena));
    executeProgram({ ...p, kernels: [k] }, arena, { seed });
  }
  before.push(Float32Array.from(arena));
  return before;
}

describe('wasm conv blocks with a stored argmax', () => {
  it.each(Object.entries(SEEDS))('random model %s: %s', async (seedText) => {
    const seed = Number(seedText);
    const m = randomModel(seed);
    const g = modelGraphs(m.make, m.input, 3).train;
    const p = compileProgram(g, WASM_TARGET);
    expect(p.kernels.some((k) => k.kind === 'conv_block_grad' && k.attrs.saved === 'argmax')).toBe(true);
    const arenas = arenasBefore(p, seed, g);
    const failures: string[] = [];
    for (const [i, k] of p.kernels.entries()) {
      if (!k.kind.startsWith('conv_block')) continue;
      const got = await runProgramOnce({ ...p, kernels: [k] }, [{ offset: 0, data: arenas[i]! }], k.outputs, { seed, step: 3 });
      k.outputs.forEach((o, j) => {
        const { error, at } = parityError(got[j]!, sliceOf(arenas[i + 1]!, o), { scale: kernelScale(arenas[i]!, k.inputs, o) });
        if (!(error <= 1e-4)) failures.push(`${k.name} output ${j}: error ${error.toExponential(2)} at ${at}`);
      });
    }
    expect(failures).toEqual([]);
  });
});
