import { describe, expect, it } from 'vitest';
import type { Expr, Kernel, Program } from '../../../src/ir/program.ts';
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

/** Slices laid out one after another, 64-byte aligned; `end()` is the arena's size so far. */
function slicer() {
  let offset = 0;
  const slice = (s: number[], value: string) => {
    const out = { offset, bytes: 4 * s.reduce((a, d) => a * d, 1), shape: s, value };
    offset += Math.ceil(out.bytes / 64) * 64;
    return out;
  };
  return { slice, end: () => offset };
}

/** A program of `kernels` over an arena of `bytes`, with no named inputs or state. */
const bareProgram = (kernels: Kernel[], batchSize: number, bytes: number): Program => ({
  stage: 'train', batchSize, state: [], inputs: {}, outputs: {}, constants: [], kernels, memory: { arenaBytes: bytes, naiveBytes: bytes, lowerBoundBytes: bytes },
});

// batch_norm_grad_stats sums its partials in one pass over g and x; each must keep the bits its
// op kernel gives alone (the order of every sum is the reduction's, not the pass's).
describe('wasm batch_norm_grad_stats', () => {
  it.each([[[3, 5, 7, 9]], [[13, 10]], [[2, 3, 1, 1]]])('x %j: every partial has the bits of its op kernel alone', async (shape) => {
    const C = shape[1]!;
    const n = shape.reduce((a, d) => a * d, 1);
    const { slice, end } = slicer();
    const [g, x, mean, v, gamma] = [slice(shape, 'g'), slice(shape, 'x'), slice([C], 'mean'), slice([C], 'var'), slice([C], 'gamma')];
    const fused = ['dgamma', 'dbeta', 'dmean', 'dvar'].map((r) => slice([C], r));
    const alone = ['dgamma', 'dbeta', 'dmean', 'dvar'].map((r) => slice([C], `${r} alone`));
    const ins = [g, x, mean, v, gamma];
    const eps = 1e-5;
    const axes = shape.length === 4 ? [0, 2, 3] : [0];
    const kernels: Kernel[] = [
      { name: 'k0', kind: 'batch_norm_grad_stats', ops: [], attrs: { eps, dgamma: true, dbeta: true, dmean: true, dvar: true, gExpr: false }, inputs: ins, outputs: fused },
      ...(['gamma', 'mean', 'var'] as const).map((wrt, i) => ({ name: `k${i + 1}`, kind: 'batch_norm_grad', ops: [], attrs: { eps, wrt }, inputs: ins, outputs: [alone[[0, 2, 3][i]!]!] })),
      { name: 'k4', kind: 'sum', ops: [], attrs: { axes, keepdim: false }, inputs: [g], outputs: [alone[1]!] },
    ];
    const p = bareProgram(kernels, shape[0]!, end());
    const arena = new Float32Array(end() / 4);
    const fill = (s: { offset: number }, count: number, f: (i: number) => number) => arena.set(Float32Array.from({ length: count }, (_, i) => f(i)), s.offset / 4);
    fill(g, n, (i) => Math.sin(i * 1.3) * 2);
    fill(x, n, (i) => Math.cos(i * 0.7) * 3 + 1);
    fill(mean, C, (i) => 0.1 * i - 0.2);
    fill(v, C, (i) => 0.5 + 0.3 * i);
    fill(gamma, C, (i) => 1 - 0.1 * i);
    const got = await runProgramOnce(p, [{ offset: 0, data: arena }], [...fused, ...alone]);
    for (let r = 0; r < 4; r++) expect(Array.from(got[r]!)).toEqual(Array.from(got[4 + r]!));
    expect(got.slice(0, 4).every((t) => t.some((y) => y !== 0))).toBe(true);
  });

  // With gExpr, g = relu_grad(a + b, y) is computed at each element in the partials' pass and in
  // the epilogue (which here writes it): the same bits as an elementwise kernel making g, then
  // the partials' kernels alone over it.
  it.each([[[3, 5, 7, 9]], [[13, 10]]])('x %j: g computed inside (gExpr) gives the bits of g made first', async (shape) => {
    const C = shape[1]!;
    const n = shape.reduce((a, d) => a * d, 1);
    const { slice, end } = slicer();
    const [x, mean, v, gamma, ga, gb, y] = [slice(shape, 'x'), slice([C], 'mean'), slice([C], 'var'), slice([C], 'gamma'), slice(shape, 'ga'), slice(shape, 'gb'), slice(shape, 'y')];
    const [gInside, gMade] = [slice(shape, 'g inside'), slice(shape, 'g made')];
    const fused = ['dgamma', 'dbeta', 'dmean', 'dvar'].map((r) => slice([C], r));
    const alone = ['dgamma', 'dbeta', 'dmean', 'dvar'].map((r) => slice([C], `${r} alone`));
    const eps = 1e-5;
    const axes = shape.length === 4 ? [0, 2, 3] : [0];
    // g = y > 0 ? a + b : 0, over inputs (x, mean, var, gamma, a, b, y) inside, (a, b, y) alone.
    const gOf = (a: number): Expr => ({
      steps: [{ prim: 'input', input: a }, { prim: 'input', input: a + 1 }, { prim: 'add', args: [0, 1] }, { prim: 'input', input: a + 2 }, { prim: 'const', value: 0 }, { prim: 'gt', args: [3, 4] }, { prim: 'select', args: [5, 2, 4] }],
      outputs: [6],
    });
    const inside = gOf(4);
    const made = [gMade, x, mean, v, gamma];
    const kernels: Kernel[] = [
      { name: 'k0', kind: 'batch_norm_grad_stats', ops: [], attrs: { eps, dgamma: true, dbeta: true, dmean: true, dvar: true, gExpr: true }, inputs: [x, mean, v, gamma, ga, gb, y], outputs: [...fused, gInside], expr: { ...inside, outputs: [6, 6] } },
      { name: 'k1', kind: 'elementwise', ops: [], attrs: {}, inputs: [ga, gb, y], outputs: [gMade], expr: gOf(0) },
      ...(['gamma', 'mean', 'var'] as const).map((wrt, i) => ({ name: `k${i + 2}`, kind: 'batch_norm_grad', ops: [], attrs: { eps, wrt }, inputs: made, outputs: [alone[[0, 2, 3][i]!]!] })),
      { name: 'k5', kind: 'sum', ops: [], attrs: { axes, keepdim: false }, inputs: [gMade], outputs: [alone[1]!] },
    ];
    const p = bareProgram(kernels, shape[0]!, end());
    const arena = new Float32Array(end() / 4);
    const fill = (s: { offset: number }, count: number, f: (i: number) => number) => arena.set(Float32Array.from({ length: count }, (_, i) => f(i)), s.offset / 4);
    fill(ga, n, (i) => Math.sin(i * 1.3) * 2);
    fill(gb, n, (i) => Math.sin(i * 0.4 + 1));
    fill(y, n, (i) => Math.cos(i * 0.9));
    fill(x, n, (i) => Math.cos(i * 0.7) * 3 + 1);
    fill(mean, C, (i) => 0.1 * i - 0.2);
    fill(v, C, (i) => 0.5 + 0.3 * i);
    fill(gamma, C, (i) => 1 - 0.1 * i);
    const got = await runProgramOnce(p, [{ offset: 0, data: arena }], [...fused, ...alone, gInside, gMade]);
    for (let r = 0; r < 4; r++) expect(Array.from(got[r]!)).toEqual(Array.from(got[4 + r]!));
    expect(Array.from(got[8]!)).toEqual(Array.from(got[9]!));
    // The mask is live: some of g is zeroed, some not.
    expect(got[9]!.some((t) => t === 0) && got[9]!.some((t) => t !== 0)).toBe(true);
  });
});
