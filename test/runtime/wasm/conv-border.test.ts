import { describe, expect, it } from 'vitest';
import { deadTapShare } from '../../../src/codegen/wasm-simd/conv.ts';
import type { Program, Slice } from '../../../src/ir/program.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { runProgramOnce } from '../../../src/runtime/wasm/run-program.ts';
import { kernelScale, parityError } from '../parity/backends.ts';

// Convolutions whose input has a wide zero border (LeNet's transposed conv2 is 38% border) skip
// the taps that would read only zeros, tile by tile (convImage's live region). These shapes make
// the skipped share large enough for the path to be taken (asserted), across strides, paddings,
// odd sizes and partial vectors; each against the reference, tolerance 1e-4 (parityError).

interface Case {
  name: string;
  kind: 'conv2d' | 'conv2d_grad_input';
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride: number;
  padding: number;
}

const cases: Case[] = [
  { name: 'dx, LeNet conv2', kind: 'conv2d_grad_input', x: [2, 6, 14, 14], w: [16, 6, 5, 5], stride: 1, padding: 0 },
  { name: 'dx, small odd image', kind: 'conv2d_grad_input', x: [2, 3, 9, 9], w: [5, 3, 5, 5], stride: 1, padding: 0 },
  { name: 'dx, stride 2, padding 1', kind: 'conv2d_grad_input', x: [2, 3, 11, 11], w: [4, 3, 5, 5], stride: 2, padding: 1 },
  { name: 'dx, padding 2', kind: 'conv2d_grad_input', x: [1, 2, 7, 7], w: [3, 2, 5, 5], stride: 1, padding: 2 },
  { name: 'forward, padding 2 on a 6×6 image', kind: 'conv2d', x: [2, 3, 6, 6], w: [5, 3, 5, 5], stride: 1, padding: 2 },
  { name: 'forward, stride 2, padding 3', kind: 'conv2d', x: [2, 2, 9, 9], w: [3, 2, 7, 7], stride: 2, padding: 3 },
];

function program(c: Case): Program {
  const [N, , H, W] = c.x;
  const [O, , KH, KW] = c.w;
  const HO = Math.floor((H + 2 * c.padding - KH) / c.stride) + 1;
  const WO = Math.floor((W + 2 * c.padding - KW) / c.stride) + 1;
  let offset = 0;
  const slice = (shape: number[], value: string): Slice => {
    const s = { offset, bytes: 4 * shape.reduce((a, b) => a * b, 1), shape, value };
    offset += Math.ceil(s.bytes / 256) * 256;
    return s;
  };
  const conv = { stride: [c.stride, c.stride], padding: [c.padding, c.padding] };
  const [ins, out, attrs] =
    c.kind === 'conv2d'
      ? [[slice(c.x, 'x'), slice(c.w, 'w'), slice([O], 'b')], slice([N, O, HO, WO], 'y'), conv]
      : [[slice([N, O, HO, WO], 'g'), slice(c.w, 'w')], slice(c.x, 'dx'), { ...conv, shape: c.x }];
  return {
    stage: 'train',
    batchSize: N,
    state: [],
    inputs: Object.fromEntries(ins.map((s) => [s.value, s])),
    outputs: {},
    constants: [],
    memory: { arenaBytes: offset, naiveBytes: offset, lowerBoundBytes: offset },
    kernels: [{ name: 'k0', kind: c.kind, ops: [c.kind], attrs, inputs: ins, outputs: [out] }],
  } as unknown as Program;
}

/** What convImage is given for the case: the padded input, or the spread gradient of dx. */
function tiling(c: Case) {
  const [, C, H, W] = c.x;
  const [O, , K] = c.w;
  const s = c.stride;
  const p = c.padding;
  if (c.kind === 'conv2d') {
    const HO = Math.floor((H + 2 * p - K) / s) + 1;
    return { C, Hp: H + 2 * p, Wp: W + 2 * p, O, KH: K, KW: K, sh: s, sw: s, HO, WO: HO, w: 0, live: { r0: p, r1: p + H, c0: p, c1: p + W } };
  }
  const HO = Math.floor((H + 2 * p - K) / s) + 1;
  const off = K - 1 - p;
  return { C: O, Hp: H + K - 1, Wp: W + K - 1, O: C, KH: K, KW: K, sh: 1, sw: 1, HO: H, WO: W, w: 0, live: { r0: off, r1: (HO - 1) * s + off + 1, c0: off, c1: (HO - 1) * s + off + 1 } };
}

describe('wasm convolutions skip the taps of a zero border', () => {
  it.each(cases)('$name', async (c) => {
    const t = tiling(c);
    expect(deadTapShare(t, t.HO >= 2 ? 2 : 1)).toBeGreaterThanOrEqual(0.15);
    const p = program(c);
    const arena = newArena(p);
    for (let i = 0; i < arena.length; i++) arena[i] = Math.sin(1.7 * i + 0.3);
    const before = Float32Array.from(arena);
    executeProgram(p, arena, { seed: 0 });
    const k = p.kernels[0]!;
    const [got] = await runProgramOnce(p, [{ offset: 0, data: before }], k.outputs);
    const { error, at } = parityError(got!, sliceOf(arena, k.outputs[0]!), { scale: kernelScale(before, k.inputs, k.outputs[0]!) });
    expect(error, `worst at ${at}`).toBeLessThanOrEqual(1e-4);
  });
});
