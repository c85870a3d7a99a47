import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../../src/ir/builder.ts';
import type { Graph } from '../../../src/ir/graph.ts';
import type { Program } from '../../../src/ir/program.ts';
import '../../../src/ir/ops/index.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { differentiate } from '../../../src/passes/autodiff.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { asNumbers, kilnAttrs, loadFixture, type TorchCase } from '../../fixtures/pytorch/elementwise.ts';
import { lowerNaive } from '../../passes/lower-naive.ts';
import { describeEachBackend } from './backends.ts';

// The elementwise ops against PyTorch: forward and gradient of every case of
// test/fixtures/pytorch/elementwise.json (made by make_elementwise_fixture.py with PyTorch's f32
// autograd), kinks and ties included, on the reference backend and every parity backend, each
// through the fused compilation and through one kernel per op.
//
// Tolerance, per element: |ours - torch| <= 8 ulp-sized units, 8·2^-24·|torch|, plus 2e-7·(1 +
// the case's largest |torch|) absolute. kiln and ATen round the same formulas in f32 but with
// different exp/log/tanh/erf (each within about 1 ulp) and, in fused kernels, contract nothing;
// a few roundings of a few ulp each stay inside 8 ulp, and the absolute term covers outputs
// that cancel to near zero (gelu's 1 + erf at x = -3, elu near 0).

/** y = op(inputs) and d sum(y·g)/d input for every input PyTorch differentiates. */
function caseGraph(c: TorchCase, shape: number[]): Graph {
  const b = new GraphBuilder();
  const state = (name: string) => b.addState({ name, shape, kind: 'param', init: { kind: 'constant', value: 0 } });
  const ins = Object.keys(c.inputs).map(state);
  const g = state('__g');
  const y = b.op(c.op, ins, kilnAttrs(c));
  const loss = b.op('sum', [b.op('mul', [y, g])], { axes: shape.map((_, i) => i), keepdim: false });
  const names = Object.keys(c.inputs);
  const wrt = names.filter((n) => n in c.grads);
  const grads = differentiate(b, loss, wrt.map((n) => ins[names.indexOf(n)]!));
  return {
    stage: 'train',
    nodes: b.nodes,
    state: b.state,
    inputs: {},
    outputs: { y, ...Object.fromEntries(wrt.map((n) => [`d${n}`, grads.get(ins[names.indexOf(n)]!)!])) },
    updates: {},
    grads: {},
    batchSize: shape[0]!,
  };
}

type Run = (p: Program, feeds: { offset: number; data: Float32Array }[], reads: Program['outputs'][string][]) => Promise<Float32Array[]>;

function failures(c: TorchCase, got: Float32Array[], names: string[]): string[] {
  const wants = [c.output, ...names.map((n) => c.grads[n]!)];
  const out: string[] = [];
  wants.forEach((want, j) => {
    const peak = Math.max(...want.map(Math.abs));
    for (let i = 0; i < want.length; i++) {
      const [a, w] = [got[j]![i]!, want[i]!];
      if (!(Math.abs(a - w) <= 8 * 2 ** -24 * Math.abs(w) + 2e-7 * (1 + peak))) out.push(`${j === 0 ? 'output' : `d/d${names[j - 1]}`}[${i}] (input ${Object.values(c.inputs).map((v) => v[i]).join(', ')}): ${a} vs torch ${w}`);
    }
  });
  return out;
}

async function checkCase(c: TorchCase, shape: number[], lower: (g: Graph) => Program, run: Run): Promise<void> {
  const graph = caseGraph(c, shape);
  const p = lower(graph);
  const values: Record<string, number[]> = { ...Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, asNumbers(v)])), __g: c.grad_output };
  const feeds = p.state.map((s) => ({ offset: s.slice.offset, data: Float32Array.from(values[s.name]!) }));
  const names = Object.keys(c.grads);
  const got = await run(p, feeds, [p.outputs.y!, ...names.map((n) => p.outputs[`d${n}`]!)]);
  expect(failures(c, got, names)).toEqual([]);
}

/**
 * Constants JSON cannot write (±Infinity, NaN) kept apart from each other by every pass and
 * written where WGSL accepts them: max(min(x, Inf), -Inf) is x, x·NaN is NaN, and a NaN bound is
 * not an Infinity one. Outputs y = x, z = NaN.
 */
function nonFiniteProgram(lower: (g: Graph) => Program): Program {
  const b = new GraphBuilder();
  const x = b.addState({ name: 'x', shape: [5], kind: 'param', init: { kind: 'constant', value: 0 } });
  const y = b.op('maximum', [b.op('minimum', [x, b.constant(Infinity)]), b.constant(-Infinity)]);
  const z = b.op('mul', [x, b.constant(NaN)]);
  return lower({ stage: 'eval', nodes: b.nodes, state: b.state, inputs: {}, outputs: { y, z }, updates: {}, grads: {}, batchSize: 1 });
}
const NON_FINITE_X = Float32Array.from([1, -2, 0, 3e38, -1e-30]);

async function checkNonFinite(lower: (g: Graph) => Program, run: Run): Promise<void> {
  const p = nonFiniteProgram(lower);
  const [y, z] = await run(p, [{ offset: p.state[0]!.slice.offset, data: NON_FINITE_X }], [p.outputs.y!, p.outputs.z!]);
  expect([...y!]).toEqual([...NON_FINITE_X]);
  expect([...z!].every(Number.isNaN)).toBe(true);
}

const fixture = loadFixture();
const cases = fixture.cases.map((c) => [c.name, c] as const);

const reference: Run = async (p, feeds, reads) => {
  const arena = newArena(p);
  for (const f of feeds) arena.set(f.data, f.offset / 4);
  executeProgram(p, arena, { seed: 1 });
  return reads.map((s) => Float32Array.from(sliceOf(arena, s)));
};

describe(`elementwise ops vs PyTorch ${fixture.torch}: reference backend`, () => {
  it.each(cases)('%s', async (_, c) => {
    await checkCase(c, fixture.shape, (g) => compileProgram(g, { name: 'reference', maxStorageBuffers: Infinity, flopsPerByte: 1 }), reference);
    await checkCase(c, fixture.shape, lowerNaive, reference);
  });

  it('non-finite constants', async () => {
    await checkNonFinite((g) => compileProgram(g, { name: 'reference', maxStorageBuffers: Infinity, flopsPerByte: 1 }), reference);
  });

  it('comparisons pass no gradient', () => {
    for (const c of fixture.cases.filter((k) => Object.keys(k.grads).length === 0)) {
      const b = new GraphBuilder();
      const [x, y] = [0, 1].map((k) => b.op('param', [], { name: `p${k}`, shape: [3] }));
      const loss = b.op('sum', [b.op(c.op, [x!, y!])], { axes: [0], keepdim: false });
      expect(differentiate(b, loss, [x!, y!]).size, c.op).toBe(0);
    }
  });
});

describeEachBackend(`elementwise ops vs PyTorch ${fixture.torch}`, (backend, skipped) => {
  it.each(cases)(`${backend.name}: %s`, async (_, c) => {
    if (skipped()) return;
    const run: Run = (p, feeds, reads) => backend.runProgram(p, feeds, reads, { seed: 1 });
    await checkCase(c, fixture.shape, (g) => compileProgram(g, backend.target()), run);
    await checkCase(c, fixture.shape, lowerNaive, run);
  });

  it(`${backend.name}: non-finite constants`, async () => {
    if (skipped()) return;
    const run: Run = (p, feeds, reads) => backend.runProgram(p, feeds, reads, { seed: 1 });
    await checkNonFinite((g) => compileProgram(g, backend.target()), run);
    await checkNonFinite(lowerNaive, run);
  });
});
