import { describe, expect, it } from 'vitest';
import { winogradFits } from '../../../src/codegen/wasm-simd/winograd.ts';
import { winograd4Fits } from '../../../src/codegen/wasm-simd/winograd-f4.ts';
import { winograd4GradWeightFits, winogradGradWeightFits } from '../../../src/codegen/wasm-simd/winograd-grad-weight.ts';
import type { Program } from '../../../src/ir/program.ts';
import { oneKernelProgram, wasmAgainstReference } from './one-kernel.ts';

// 3×3 stride-1 convolutions that run as Winograd F(4×4, 3×3) (forward and input gradient, sides
// multiples of 8) or F(2×2, 3×3) (their other shapes), and weight gradients as F(3×3, 4×4) or
// F(3×3, 2×2) likewise (summed over chunks of images): odd numbers of blocks or tile vectors (a
// last strip of one; F(4×4)'s strips spanning two images), odd batches (a last run of one image),
// short last chunks, with and without bias and padding, each against the reference. Tolerances
// (parityError, whose floor is 1% of the peak): 1e-3, 10× the direct convolution's, for F(2×2):
// its transforms scale what is summed by up to 4 (inputs) × 2.25 (weights) before the output
// transform cancels it back (measured here: 0.6e-5 to 1.7e-4). F(4×4) 1e-2: its transforms scale
// by up to 10 × 10 and its output transform's rows by up to 8 + 8 + 1, about 10× F(2×2)'s
// rounding, as the literature has it (measured here: up to 4.3e-3; a float32 simulation of random
// sums gives 10× F(2×2)'s). The weight gradients stay within 1e-3 (F(3×3, 4×4): up to 4.4e-4): their
// sums over tiles run in the transformed domain, the output transform once. A wrong tap or
// transform entry is off by ~1.

interface Case {
  name: string;
  kind: 'conv2d' | 'conv2d_grad_input' | 'conv2d_grad_weight';
  /** The forward and input gradient's algorithm (the weight gradient's is F(3×3, 2×2)). */
  f4?: boolean;
  x: [number, number, number, number];
  o: number;
  padding: number;
  bias?: boolean;
}

const cases: Case[] = [
  { name: 'forward, ResNet stage 1 (32×32, 16 → 16)', kind: 'conv2d', x: [2, 16, 32, 32], o: 16, padding: 1, f4: true },
  { name: 'forward, 8×8, 64 → 64 (one block: images in pairs)', kind: 'conv2d', x: [2, 64, 8, 8], o: 64, padding: 1, f4: true },
  { name: 'forward, 8×24 (3 blocks: strips across the pair), a last run of one image, bias', kind: 'conv2d', x: [3, 8, 8, 24], o: 12, padding: 1, bias: true, f4: true },
  { name: 'forward, 24×16 (6 blocks)', kind: 'conv2d', x: [2, 12, 24, 16], o: 8, padding: 1, f4: true },
  { name: 'forward, 8×8 bias', kind: 'conv2d', x: [3, 8, 8, 8], o: 12, padding: 1, bias: true, f4: true },
  { name: 'forward, no padding (10×18 → 8×16)', kind: 'conv2d', x: [2, 9, 10, 18], o: 8, padding: 0, f4: true },
  { name: 'forward, 6×8 (3 tile vectors: a last strip of one), bias', kind: 'conv2d', x: [3, 8, 6, 8], o: 12, padding: 1, bias: true },
  { name: 'forward, 6×8 (3 tile vectors: a last strip of one)', kind: 'conv2d', x: [3, 8, 6, 8], o: 12, padding: 1 },
  { name: 'forward, no padding (8×18 → 6×16)', kind: 'conv2d', x: [2, 9, 8, 18], o: 8, padding: 0 },
  { name: 'dx, ResNet stage 2 (16×16, 32 → 32)', kind: 'conv2d_grad_input', x: [2, 32, 16, 16], o: 32, padding: 1, f4: true },
  { name: 'dx, ResNet stage 3 (8×8, 64 → 64), a last run of one image', kind: 'conv2d_grad_input', x: [3, 64, 8, 8], o: 64, padding: 1, f4: true },
  { name: 'dx, 8 input channels from 12 output channels, 6×8', kind: 'conv2d_grad_input', x: [3, 8, 6, 8], o: 12, padding: 1 },
  { name: 'dw, ResNet stage 1 (32×32, 16 → 16), 3 images (chunks of 2)', kind: 'conv2d_grad_weight', x: [3, 16, 32, 32], o: 16, padding: 1, f4: true },
  { name: 'dw, 8×8, 64 → 32, 5 images (one chunk)', kind: 'conv2d_grad_weight', x: [5, 64, 8, 8], o: 32, padding: 1, f4: true },
  { name: 'dw, 8×8, 16 → 8, 37 images (chunks of 32: a last one of 5)', kind: 'conv2d_grad_weight', x: [37, 16, 8, 8], o: 8, padding: 1, f4: true },
  { name: 'dw, 16×16, 8 → 12, 19 images (chunks of 8: a last one of 3)', kind: 'conv2d_grad_weight', x: [19, 8, 16, 16], o: 12, padding: 1, f4: true },
  { name: 'dw, no padding (10×18 → 8×16)', kind: 'conv2d_grad_weight', x: [2, 12, 10, 18], o: 8, padding: 0, f4: true },
  { name: 'dw, 6×8, 8 → 12, 50 images (F(3×3, 2×2) in chunks of 43: a last one of 7)', kind: 'conv2d_grad_weight', x: [50, 8, 6, 8], o: 12, padding: 1 },
  { name: 'dw, no padding (8×18 → 6×16)', kind: 'conv2d_grad_weight', x: [2, 12, 8, 18], o: 8, padding: 0 },
];

function program(c: Case): Program {
  const [N, C, H, W] = c.x;
  const HO = H + 2 * c.padding - 2;
  const WO = W + 2 * c.padding - 2;
  const conv = { stride: [1, 1], padding: [c.padding, c.padding] };
  const w: [number[], string] = [[c.o, C, 3, 3], 'w'];
  if (c.kind === 'conv2d') return oneKernelProgram(c.kind, [[c.x, 'x'], w, ...(c.bias ? [[[c.o], 'b'] as [number[], string]] : [])], [[N, c.o, HO, WO], 'y'], conv);
  if (c.kind === 'conv2d_grad_input') return oneKernelProgram(c.kind, [[[N, c.o, HO, WO], 'g'], w], [c.x, 'dx'], { ...conv, shape: c.x });
  return oneKernelProgram(c.kind, [[[N, c.o, HO, WO], 'g'], [c.x, 'x']], w, { ...conv, shape: w[0] });
}

/** The image convolution the kernel runs: the padded input, or the dx's bordered gradient. */
function image(c: Case) {
  const [, C, H, W] = c.x;
  const p = c.padding;
  if (c.kind !== 'conv2d_grad_input') return { C, O: c.o, KH: 3, KW: 3, sh: 1, sw: 1, Hp: H + 2 * p, Wp: W + 2 * p, HO: H + 2 * p - 2, WO: W + 2 * p - 2 };
  return { C: c.o, O: C, KH: 3, KW: 3, sh: 1, sw: 1, Hp: H + 2, Wp: W + 2, HO: H, WO: W };
}

describe('wasm Winograd convolutions', () => {
  it.each(cases)('$name', async (c) => {
    const i = image(c);
    if (c.kind === 'conv2d_grad_weight') {
      const d = { N: c.x[0], O: i.O, C: i.C, HO: i.HO, WO: i.WO };
      expect([winograd4GradWeightFits(d), winogradGradWeightFits(d)]).toEqual([c.f4 === true, true]);
    } else {
      expect([winograd4Fits(i), winogradFits(i)]).toEqual([c.f4 === true, true]);
    }
    const { error, at } = await wasmAgainstReference(program(c), 1.3, 0.7);
    expect(error, `worst at ${at}`).toBeLessThanOrEqual(c.f4 && c.kind !== 'conv2d_grad_weight' ? 1e-2 : 1e-3);
  });

  it('leaves other shapes to the direct convolution', () => {
    const base = { C: 16, O: 16, KH: 3, KW: 3, sh: 1, sw: 1, Hp: 34, Wp: 34, HO: 32, WO: 32 };
    expect(winogradFits(base)).toBe(true);
    expect(winogradFits({ ...base, sh: 2, sw: 2, HO: 16, WO: 16 })).toBe(false);
    expect(winogradFits({ ...base, KH: 5, KW: 5, HO: 30, WO: 30 })).toBe(false);
    expect(winogradFits({ ...base, Wp: 30, WO: 28 })).toBe(false); // 28 columns: not whole tile vectors
    expect(winogradFits({ ...base, O: 6 })).toBe(false);
    expect(winogradFits({ ...base, C: 3 })).toBe(false);
    expect(winograd4Fits(base)).toBe(true);
    expect(winograd4Fits({ ...base, Hp: 32, HO: 30, Wp: 32, WO: 30 })).toBe(false); // 30: not whole 8×8 blocks
    expect(winograd4Fits({ ...base, O: 6 })).toBe(false);
    expect(winograd4Fits({ ...base, C: 3 })).toBe(false);
  });
});
