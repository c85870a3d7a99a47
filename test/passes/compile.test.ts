import { describe, expect, it } from 'vitest';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { WEBGPU_PORTABLE } from '../../src/codegen/wgsl/target.ts';
import { elementwiseOf } from '../../src/ir/elementwise.ts';
import { verifyProgram } from '../../src/ir/verify-program.ts';
import { compileProgram, kernelStages } from '../../src/passes/compile.ts';
import { sampleGraph } from './helpers.ts';

describe('compileProgram', () => {
  // WebGPU's 8 storage buffers hold Adam's update of two parameters (p, g, m, v each), and not
  // the last layer's forward, loss and backward together (10); the wasm backend binds nothing, so
  // one launch updates all four and one runs the last layer.
  it.each([
    [WEBGPU_PORTABLE.name, WEBGPU_PORTABLE, 2],
    [WASM_TARGET.name, WASM_TARGET, 1],
  ] as const)('SimpleCNN at batch 64 for %s: a training step of at most 6 kernels, an eval step of at most 2, no stand-alone elementwise kernel', async (_, target, launches) => {
    const train = compileProgram(await sampleGraph('simple-cnn', 'train', 64), target);
    const evalStep = compileProgram(await sampleGraph('simple-cnn', 'eval', 64), target);
    const last = launches === 1 ? ['linear_cross_entropy'] : ['linear_cross_entropy', 'linear_grad'];
    expect(train.kernels.map((k) => k.kind)).toEqual(['conv_block', ...last, 'conv_block_grad', ...Array<string>(launches).fill('foreach')]);
    expect(evalStep.kernels.map((k) => k.kind)).toEqual(['conv_block', 'linear_cross_entropy']);
    for (const k of [...train.kernels, ...evalStep.kernels]) expect(k.kind === 'elementwise' || elementwiseOf(k.kind, k.attrs) !== undefined).toBe(false);
    expect(verifyProgram(train, target)).toEqual([]);
    expect(verifyProgram(evalStep, target)).toEqual([]);
  });

  it('exposes every stage for dumps, each a pure function of the one before', async () => {
    const g = await sampleGraph('mlp', 'train');
    const a = kernelStages(g, WASM_TARGET);
    const b = kernelStages(g, WASM_TARGET);
    expect(a).toEqual(b);
    expect(a.fused.kernels.length).toBe(a.scheduled.kernels.length);
  });
});
