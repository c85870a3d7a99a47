import { beforeAll, describe, expect, it } from 'vitest';
import type { Kernel, Program, Slice } from '../../src/ir/program.ts';
import { WEBGPU_PORTABLE } from '../../src/codegen/wgsl/target.ts';
import { verifyProgram } from '../../src/ir/verify-program.ts';
import { compileProgram } from '../../src/passes/compile.ts';
import { sampleGraph } from '../passes/helpers.ts';

const sl = (offset: number, shape: number[], value: string): Slice => ({ offset, bytes: 4 * shape.reduce((a, b) => a * b, 1), shape, value });
const kernel = (name: string, kind: string, inputs: Slice[], outputs: Slice[], attrs = {}): Kernel => ({ name, kind, ops: [kind], attrs, inputs, outputs });

/** x [4] at 0, then the given kernels; the output `y` is read after the step. */
function tiny(kernels: Kernel[], y: Slice): Program {
  return {
    stage: 'eval',
    batchSize: 1,
    kernels,
    state: [],
    inputs: { x: sl(0, [4], 'x') },
    outputs: { y },
    constants: [],
    memory: { arenaBytes: 1024, naiveBytes: 1024, lowerBoundBytes: 1024 },
  };
}

describe('verifyProgram', () => {
  it('accepts an elementwise kernel writing over an input it reads last', () => {
    expect(verifyProgram(tiny([kernel('k0', 'neg', [sl(0, [4], 'x')], [sl(0, [4], 'y')])], sl(0, [4], 'y')), WEBGPU_PORTABLE)).toEqual([]);
  });

  it("counts a one-element value in the step's reused bytes as a storage buffer: only the step itself is a uniform", () => {
    const step = { offset: 0, bytes: 4, shape: [], value: 'step' };
    const k0 = kernel('k0', 'add', [sl(256, [1], 'b'), sl(256, [1], 'b')], [sl(0, [1], '%39')]);
    const p = { ...tiny([k0], sl(0, [1], '%39')), stage: 'train' as const, inputs: { step } };
    expect(verifyProgram(p, { name: 'a 1-buffer target', maxStorageBuffers: 1 })).toEqual(['k0: binds 2 storage buffers, more than a 1-buffer target allows']);
  });

  it('rejects an in-place write by a kind that reads other elements', () => {
    const p = tiny([kernel('k0', 'log_softmax', [sl(0, [4], 'x')], [sl(0, [4], 'y')], { dim: 0 })], sl(0, [4], 'y'));
    expect(verifyProgram(p, WEBGPU_PORTABLE)).toEqual(['k0: output 0 (y) overlaps input 0 (x) and log_softmax may not write it in place']);
  });

  it('rejects overwriting a value a later kernel reads', () => {
    const p = tiny([kernel('k0', 'neg', [sl(0, [4], 'x')], [sl(0, [4], 't')]), kernel('k1', 'add', [sl(0, [4], 't'), sl(0, [4], 'x')], [sl(256, [4], 'y')])], sl(256, [4], 'y'));
    const problems = verifyProgram(p, WEBGPU_PORTABLE);
    expect(problems).toContain('k1 reads x at [0, 16), which holds t');
    expect(problems).toContain('x [0, 16) and t [0, 16) are live at once (kernels -1..1 and 0..1)');
  });

  it('rejects misaligned, oversized and unnamed slices', () => {
    const p = tiny([kernel('k0', 'neg', [sl(0, [4], 'x')], [{ offset: 128, bytes: 16, shape: [4] }])], sl(1024, [4], 'y'));
    expect(verifyProgram(p, WEBGPU_PORTABLE)).toEqual([
      'output y: [1024, 1040) is outside the 1024-byte arena',
      'k0 output 0: offset 128 is not a multiple of 256',
      'k0 output 0: the slice names no value',
    ]);
  });

  it('rejects a fused kernel its kind does not describe: a conv_block with a bias and no bias input', () => {
    const attrs = { stride: [1, 1], padding: [0, 0], bias: true, act: 'none', pool: 'none', argmax: false };
    const p = tiny([kernel('k0', 'conv_block', [sl(0, [1, 1, 2, 2], 'x'), sl(256, [1, 1, 1, 1], 'w')], [sl(512, [1, 1, 2, 2], 'y')], attrs)], sl(512, [1, 1, 2, 2], 'y'));
    expect(verifyProgram(p, WEBGPU_PORTABLE)).toEqual(['k0: conv_block: input b is missing']);
  });

  describe('on the compiled SimpleCNN step', () => {
    let p: Program;
    beforeAll(async () => {
      p = compileProgram(await sampleGraph('simple-cnn', 'train', 16), WEBGPU_PORTABLE);
    });

    it('is sound', () => {
      expect(verifyProgram(p, WEBGPU_PORTABLE)).toEqual([]);
    });

    it('finds a value placed over one still live', () => {
      // The logits gradient moved onto the pooled activations, which the linear gradient reads after.
      const k = p.kernels.findIndex((x) => x.kind === 'linear_cross_entropy');
      const pooled = p.kernels[k]!.inputs[0]!;
      const bad = { ...p, kernels: p.kernels.map((x, i) => (i === k ? { ...x, outputs: x.outputs.map((o, j) => (j === 2 ? { ...o, offset: pooled.offset } : o)) } : x)) };
      expect(verifyProgram(bad, WEBGPU_PORTABLE).some((m) => m.includes(`reads ${pooled.value}`))).toBe(true);
    });

    it('finds a persistent tensor left without its new value', () => {
      const bad = { ...p, state: p.state.map((s) => (s.name === 'fc1.bias' ? { ...s, update: '%3' } : s)) };
      expect(verifyProgram(bad, WEBGPU_PORTABLE)).toEqual([expect.stringMatching(/^state fc1.bias should end the step as %3 at \[\d+, \d+\), but that holds %\d+$/)]);
    });

    it("counts storage buffers against the target's limit", () => {
      expect(verifyProgram(p, { name: 'a 5-buffer target', maxStorageBuffers: 5 })).toContainEqual(expect.stringMatching(/^k\d+_\w+: binds [678] storage buffers, more than a 5-buffer target allows$/));
    });
  });
});
