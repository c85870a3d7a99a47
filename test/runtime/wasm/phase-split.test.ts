import { describe, expect, it } from 'vitest';
import type { Program } from '../../../src/ir/program.ts';
import { oneKernelProgram, wasmAgainstReference } from './one-kernel.ts';

// Stride-2 convolutions run as stride-1 ones over phase images (src/codegen/wasm-simd/phase-split.ts):
// forward, input gradient and weight gradient, for ResNet's 3×3 and 1×1 layers, odd sizes (rows
// and columns no tap reads), kernels of 2, 4 and 5 (phases of unequal sub-kernels), padding 0 to
// 2 and a bias, each against the reference. Tolerance 1e-3 (parityError): ResNet's layers sum
// 144-576 products in f32, which lands 1-4e-4 from the reference's f64 on an output near 1% of
// the peak, with the direct kernels too; a wrong phase, tap or row is off by ~1.

interface Case {
  name: string;
  x: [number, number, number, number];
  o: number;
  k: number;
  padding: number;
  bias?: boolean;
}

const cases: Case[] = [
  { name: 'ResNet 3×3, 32×32, 16 → 32', x: [2, 16, 32, 32], o: 32, k: 3, padding: 1 },
  { name: 'ResNet 1×1 projection, 16×16, 32 → 64', x: [2, 32, 16, 16], o: 64, k: 1, padding: 0 },
  { name: '3×3 on an odd 13×11 image, bias', x: [3, 3, 13, 11], o: 5, k: 3, padding: 1, bias: true },
  { name: '1×1 on an odd 9×7 image (the last row and column unread)', x: [2, 4, 9, 7], o: 6, k: 1, padding: 0 },
  { name: '2×2, no padding, 10×9', x: [2, 3, 10, 9], o: 4, k: 2, padding: 0 },
  { name: '5×5, padding 2, 15×15', x: [2, 2, 15, 15], o: 3, k: 5, padding: 2 },
  { name: '4×4, padding 1, 12×14', x: [1, 3, 12, 14], o: 8, k: 4, padding: 1 },
];

const kinds = ['conv2d', 'conv2d_grad_input', 'conv2d_grad_weight'] as const;

function program(c: Case, kind: (typeof kinds)[number]): Program {
  const [N, C, H, W] = c.x;
  const HO = Math.floor((H + 2 * c.padding - c.k) / 2) + 1;
  const WO = Math.floor((W + 2 * c.padding - c.k) / 2) + 1;
  const conv = { stride: [2, 2], padding: [c.padding, c.padding] };
  const w: [number[], string] = [[c.o, C, c.k, c.k], 'w'];
  const y = [N, c.o, HO, WO];
  if (kind === 'conv2d') return oneKernelProgram(kind, [[c.x, 'x'], w, ...(c.bias ? [[[c.o], 'b'] as [number[], string]] : [])], [y, 'y'], conv);
  if (kind === 'conv2d_grad_input') return oneKernelProgram(kind, [[y, 'g'], w], [c.x, 'dx'], { ...conv, shape: c.x });
  return oneKernelProgram(kind, [[y, 'g'], [c.x, 'x']], w, { ...conv, shape: w[0] });
}

describe('wasm stride-2 convolutions over phase images', () => {
  for (const kind of kinds) {
    it.each(cases)(`${kind}: $name`, async (c) => {
      const { error, at } = await wasmAgainstReference(program(c, kind), 1.7, 0.3);
      expect(error, `worst at ${at}`).toBeLessThanOrEqual(1e-3);
    });
  }
});
