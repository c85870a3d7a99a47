import { describe, expect, it } from 'vitest';
import { elementwiseOf } from '../../src/ir/elementwise.ts';
import { verifyProgram } from '../../src/ir/verify-program.ts';
import { compileProgram, kernelStages } from '../../src/passes/compile.ts';
import { sampleGraph } from './helpers.ts';

describe('compileProgram', () => {
  it('SimpleCNN at batch 64: a training step of at most 6 kernels, an eval step of at most 2, no stand-alone elementwise kernel', async () => {
    const train = compileProgram(await sampleGraph('simple-cnn', 'train', 64));
    const evalStep = compileProgram(await sampleGraph('simple-cnn', 'eval', 64));
    expect(train.kernels.map((k) => k.kind)).toEqual(['conv_block', 'linear_cross_entropy', 'linear_grad', 'conv_block_grad', 'foreach', 'foreach']);
    expect(evalStep.kernels.map((k) => k.kind)).toEqual(['conv_block', 'linear_cross_entropy']);
    for (const k of [...train.kernels, ...evalStep.kernels]) expect(k.kind === 'elementwise' || elementwiseOf(k.kind, k.attrs) !== undefined).toBe(false);
    expect(verifyProgram(train)).toEqual([]);
    expect(verifyProgram(evalStep)).toEqual([]);
  });

  it('exposes every stage for dumps, each a pure function of the one before', async () => {
    const g = await sampleGraph('mlp', 'train');
    const a = kernelStages(g);
    const b = kernelStages(g);
    expect(a).toEqual(b);
    expect(a.fused.kernels.length).toBe(a.scheduled.kernels.length);
  });
});
