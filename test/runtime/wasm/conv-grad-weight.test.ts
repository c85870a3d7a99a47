import { describe, expect, it } from 'vitest';
import { oneKernelProgram, wasmAgainstReference } from './one-kernel.ts';

// The convolution weight gradient vectorises over output channels when there are a multiple of 4
// and at least 16 taps C·KH·KW (tiles of 4, 2 or 1 channel vectors by 2, 4 or 8 taps, a last
// group of fewer taps) and over output columns otherwise; each shape against the reference, tolerance 1e-4 (parityError).
// Two threads: LeNet's conv2 in the steps parity suite (the wasm backend runs on 2).

const cases: { name: string; x: [number, number, number, number]; w: [number, number, number, number]; stride: number; padding: number }[] = [
  { name: 'LeNet conv2: 16 channels, 5×5', x: [3, 6, 14, 14], w: [16, 6, 5, 5], stride: 1, padding: 0 },
  { name: '4 channels (tiles of 1 vector × 8 taps), padding 1', x: [2, 3, 9, 7], w: [4, 3, 3, 3], stride: 1, padding: 1 },
  { name: '8 channels (2 × 4), stride 2', x: [2, 2, 11, 11], w: [8, 2, 5, 5], stride: 2, padding: 1 },
  { name: '32 channels (two blocks of 16)', x: [2, 2, 12, 10], w: [32, 2, 3, 3], stride: 1, padding: 0 },
  { name: '12 channels (3 vectors), 1×1 kernel', x: [2, 16, 6, 6], w: [12, 16, 1, 1], stride: 1, padding: 0 },
  { name: '32 channels but 9 taps: vectors over columns', x: [2, 1, 12, 10], w: [32, 1, 3, 3], stride: 1, padding: 0 },
  { name: '6 channels: vectors over columns', x: [2, 1, 14, 14], w: [6, 1, 5, 5], stride: 1, padding: 2 },
];

describe('wasm conv2d weight gradient', () => {
  it.each(cases)('$name', async (c) => {
    const [N, , H, W] = c.x;
    const [O, , KH, KW] = c.w;
    const HO = Math.floor((H + 2 * c.padding - KH) / c.stride) + 1;
    const WO = Math.floor((W + 2 * c.padding - KW) / c.stride) + 1;
    const p = oneKernelProgram('conv2d_grad_weight', [[[N, O, HO, WO], 'g'], [c.x, 'x']], [c.w, 'dw'], { stride: [c.stride, c.stride], padding: [c.padding, c.padding], shape: c.w });
    const { error, at } = await wasmAgainstReference(p, 1.3, 0.7);
    expect(error, `worst at ${at}`).toBeLessThanOrEqual(1e-4);
  });
});
