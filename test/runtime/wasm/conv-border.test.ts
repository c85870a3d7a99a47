import { describe, expect, it } from 'vitest';
import { convTile, deadTapShare } from '../../../src/codegen/wasm-simd/conv.ts';
import type { Program } from '../../../src/ir/program.ts';
import { oneKernelProgram, wasmAgainstReference } from './one-kernel.ts';

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
  const conv = { stride: [c.stride, c.stride], padding: [c.padding, c.padding] };
  return c.kind === 'conv2d'
    ? oneKernelProgram(c.kind, [[c.x, 'x'], [c.w, 'w'], [[O], 'b']], [[N, O, HO, WO], 'y'], conv)
    : oneKernelProgram(c.kind, [[[N, O, HO, WO], 'g'], [c.w, 'w']], [c.x, 'dx'], { ...conv, shape: c.x });
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
    expect(deadTapShare(t, convTile(t).R)).toBeGreaterThanOrEqual(0.15);
    const p = program(c);
    const { error, at } = await wasmAgainstReference(p, 1.7, 0.3);
    expect(error, `worst at ${at}`).toBeLessThanOrEqual(1e-4);
  });
});

// Channels in threes (LeNet's 6) take 3-row × 3-channel tiles: every remainder of rows (0, 1, 2)
// and of channels, forward and transposed, against the reference.
const threes: Case[] = [
  { name: 'forward, LeNet conv1 (28 rows: one left over)', kind: 'conv2d', x: [2, 1, 28, 28], w: [6, 1, 5, 5], stride: 1, padding: 2 },
  { name: 'forward, 8 rows (two left over), 9 channels', kind: 'conv2d', x: [2, 2, 10, 10], w: [9, 2, 3, 3], stride: 1, padding: 0 },
  { name: 'forward, 6 rows, stride 2, 3 channels', kind: 'conv2d', x: [1, 2, 13, 11], w: [3, 2, 3, 3], stride: 2, padding: 1 },
  { name: 'dx, 6 input channels, 14 rows (two left over)', kind: 'conv2d_grad_input', x: [2, 6, 14, 14], w: [4, 6, 3, 3], stride: 1, padding: 1 },
];

describe('wasm convolutions with channels in threes', () => {
  it.each(threes)('$name', async (c) => {
    expect(convTile(tiling(c))).toEqual({ OB: 3, R: 3 });
    const { error, at } = await wasmAgainstReference(program(c), 1.7, 0.3);
    expect(error, `worst at ${at}`).toBeLessThanOrEqual(1e-4);
  });
});
