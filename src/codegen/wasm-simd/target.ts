import type { Target } from '../../ir/target.ts';

/**
 * The wasm backend binds nothing: a kernel reads the one linear memory at any address, so no
 * kernel is split for a binding limit.
 *
 * Bytes cost 2 flops each: measured, not the DRAM balance (≈ 8 for a core's f32 SIMD against
 * 10 GB/s), because what a step stores for backward is a few MB written and read back within the
 * step, from cache. SimpleCNN's choice, side by side on this backend: storing the max-pool argmax
 * (4.2 MB) instead of recomputing its convolution in the backward kernel (29 MFLOP) makes the
 * whole train step 1.29-1.34× faster (1 and 2 threads), where a balance of 8 chose to recompute;
 * storing the linear layer's input gradient (2.8 MB) or folding it (6.9 MFLOP) measured even.
 */
export const WASM_TARGET: Target = { name: 'wasm', maxStorageBuffers: Infinity, flopsPerByte: 2 };
