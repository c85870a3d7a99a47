import { expect, it } from 'vitest';
import { ARENA_ALIGN, type Program, type Slice } from '../../../src/ir/program.ts';
import { numel } from '../../../src/ir/shape.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { rng } from '../reference/helpers.ts';
import { describeEachBackend, parityError } from './backends.ts';

// The attention kinds (src/ir/kernels.ts) on every backend against the reference, as one
// hand-made Program: attention writes y and lse, attention_grad reads them with a random dy.
// Shapes with odd head sizes and T ≠ S reach every tail of the vector code; the GPT's head shape
// (T = S = 32 here, D = E = 32) its main path; dropout's masks must be the reference's draw for draw. Outputs within 1e-4 (parityError, scaled by the
// largest value).

interface Case {
  name: string;
  lead: number[];
  T: number;
  S: number;
  D: number;
  E: number;
  causal: boolean;
  /** Dropout on the attention weights (p, site). */
  dropout?: number;
  /** dk written as [..., D, S]. */
  dkTransposed?: boolean;
  /** Scores divided by scale (the model wrote s / c). */
  divide?: boolean;
  /**
   * lead = [B, H], T = S, D = E: q, k and v read in place from one [B, T, 3·H·D] projection, y
   * written and dy read in the [B, T, H, D] layout of merged heads (the kinds' head views).
   */
  views?: boolean;
  /** With views: dq, dk and dv written in place into one [B, T, 3·H·D] gradient. */
  dqkv?: boolean;
}

const STEP = 3;

const CASES: Case[] = [
  { name: 'causal, odd sizes', lead: [2, 3], T: 9, S: 9, D: 5, E: 6, causal: true },
  { name: 'full, T < S', lead: [3], T: 4, S: 7, D: 4, E: 3, causal: false },
  { name: 'causal, T < S', lead: [1, 2], T: 5, S: 11, D: 7, E: 9, causal: true },
  { name: "causal, the GPT's heads", lead: [2, 4], T: 32, S: 32, D: 32, E: 32, causal: true },
  { name: 'causal, dropout 0.3, odd sizes', lead: [2, 2], T: 7, S: 7, D: 6, E: 5, causal: true, dropout: 0.3 },
  { name: 'causal, dk transposed, T < S', lead: [3], T: 6, S: 9, D: 5, E: 4, causal: true, dkTransposed: true },
  { name: 'full, scores divided, odd sizes', lead: [2], T: 5, S: 5, D: 3, E: 7, causal: false, divide: true },
  { name: "full, dropout 0.1, the GPT's heads", lead: [1, 2], T: 16, S: 16, D: 32, E: 32, causal: false, dropout: 0.1 },
  { name: 'causal, dropout 0.2, heads read from a qkv projection and gradients written into one, odd sizes', lead: [2, 3], T: 7, S: 7, D: 5, E: 5, causal: true, dropout: 0.2, views: true, dqkv: true },
  { name: "full, heads read from a qkv projection and gradients written into one, the GPT's heads", lead: [1, 4], T: 32, S: 32, D: 32, E: 32, causal: false, views: true, dqkv: true },
  { name: "causal, dk transposed, heads read from a qkv projection, the GPT's heads", lead: [2, 4], T: 32, S: 32, D: 32, E: 32, causal: true, dkTransposed: true, views: true },
];

function program(c: Case): { p: Program; step: Slice; fill: Slice[]; reads: Slice[] } {
  let offset = 0;
  const slice = (shape: readonly number[], value: string): Slice => {
    const s = { offset, bytes: 4 * Math.max(1, numel(shape)), shape, value };
    offset += Math.ceil(s.bytes / ARENA_ALIGN) * ARENA_ALIGN;
    return s;
  };
  const { lead, T, S, D, E, causal } = c;
  const step = slice([], 'step');
  const [B, H] = lead as [number, number];
  const qkv = c.views ? slice([B, T, 3 * H * D], 'qkv') : undefined;
  const q = qkv ?? slice([...lead, T, D], 'q');
  const k = qkv ?? slice([...lead, S, D], 'k');
  const v = qkv ?? slice([...lead, S, E], 'v');
  const dy = slice(c.views ? [B, T, H, E] : [...lead, T, E], 'dy');
  const y = slice(c.views ? [B, T, H, E] : [...lead, T, E], 'y');
  const lse = slice([...lead, T], 'lse');
  const grads = c.dqkv ? [slice([B, T, 3 * H * D], 'dqkv')] : [slice([...lead, T, D], 'dq'), slice(c.dkTransposed ? [...lead, D, S] : [...lead, S, D], 'dk'), slice([...lead, S, E], 'dv')];
  const merged = [B, H, T, E, 0, T * H * E, E, H * E];
  const views: Record<string, number[]> = c.views
    ? { qView: [B, H, T, D, 0, T * 3 * H * D, D, 3 * H * D], kView: [B, H, T, D, H * D, T * 3 * H * D, D, 3 * H * D], vView: [B, H, T, D, 2 * H * D, T * 3 * H * D, D, 3 * H * D], yView: merged }
    : {};
  const gradViews: Record<string, number[] | boolean> = c.dqkv ? { dqkv: true, dqView: views.qView!, dkView: views.kView!, dvView: views.vView! } : { dqkv: false };
  const scale = 1 / Math.sqrt(D);
  const dropout: Record<string, number | boolean> = c.dropout ? { dropout: true, p: c.dropout, stream: 2 } : { dropout: false };
  const withStep = c.dropout ? [step] : [];
  const p: Program = {
    stage: 'train',
    batchSize: 1,
    state: [],
    inputs: { x: q, step },
    outputs: {},
    constants: [],
    kernels: [
      { name: 'k0_attention', kind: 'attention', ops: ['attention'], attrs: { causal, scale, divide: c.divide === true, lse: true, ...dropout, ...views }, inputs: [q, k, v, ...withStep], outputs: [y, lse] },
      { name: 'k1_attention_grad', kind: 'attention_grad', ops: ['attention_grad'], attrs: { causal, scale, divide: c.divide === true, ...dropout, dkTransposed: c.dkTransposed === true, ...views, ...(c.views ? { dyView: merged } : {}), ...gradViews }, inputs: [dy, q, k, v, y, lse, ...withStep], outputs: grads },
    ],
    memory: { arenaBytes: offset, naiveBytes: offset, lowerBoundBytes: offset },
  };
  return { p, step, fill: qkv ? [qkv, dy] : [q, k, v, dy], reads: [y, lse, ...grads] };
}

describeEachBackend('attention kernels', (backend, skipped) => {
  it.each(CASES.map((c) => [c.name, c] as const))(`${backend.name}: %s`, async (_, c) => {
    if (skipped()) return;
    const { p, step, fill, reads } = program(c);
    const arena = newArena(p);
    sliceOf(arena, step).set([STEP]);
    const r = rng(7);
    for (const s of fill) sliceOf(arena, s).set(r.uniform(numel(s.shape), -2, 2));
    const want = Float32Array.from(arena);
    executeProgram(p, want, { seed: 1 });
    const got = await backend.runProgram(p, [{ offset: 0, data: arena }], reads, { seed: 1, step: STEP });
    const failures = reads.flatMap((s, j) => {
      const { error, at } = parityError(got[j]!, sliceOf(want, s));
      return error <= 1e-4 ? [] : [`${s.value}: error ${error.toExponential(2)} at ${at}: ${got[j]![at]} vs ${sliceOf(want, s)[at]}`];
    });
    expect(failures).toEqual([]);
  });
});
