import { describe, expect, it } from 'vitest';
import { emitWgsl } from '../../../src/codegen/wgsl/index.ts';
import { checkBindings, reflectShader } from '../../../src/codegen/wgsl/reflect.ts';
import { broadcastIndex, f32 } from '../../../src/codegen/wgsl/shader.ts';
import { WEBGPU_PORTABLE } from '../../../src/codegen/wgsl/target.ts';
import { numel } from '../../../src/ir/shape.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { lowerNaive } from '../../passes/lower-naive.ts';
import { sampleGraph, SAMPLES } from '../../passes/helpers.ts';

// WGSL codegen without a device: literals, index arithmetic, and the binding contract checked on
// every shader of every sample's programs (both lowerings).

describe('WGSL literals and indices', () => {
  it('a float literal holds exactly the f32 nearest the value', () => {
    for (const v of [0, 1, -1, 0.1, 1 / 3, 1e-8, -2.5e-30, 3.4e38, 1.3333333730697632, Math.log(0.999)]) {
      const lit = f32(v).replace(/[()]/g, '');
      expect(Math.fround(Number(lit))).toBe(Math.fround(v));
      expect(lit).toMatch(/[.e]/); // never an integer literal, which WGSL would type as i32
    }
    // WGSL rejects a constant expression that evaluates to Inf or NaN: Shader.float writes those.
    expect(() => f32(Infinity)).toThrow(/has no f32 literal/);
    expect(f32(-0)).toBe('(-0.0)');
  });

  it('broadcast indices follow NumPy: evaluated for every element against the rule', () => {
    const cases: [number[], number[]][] = [
      [[3, 1], [2, 3, 4]],
      [[4], [2, 3, 4]],
      [[2, 1, 4], [2, 3, 4]],
      [[], [5, 2]],
      [[2, 3, 4], [2, 3, 4]],
    ];
    for (const [from, to] of cases) {
      const expr = broadcastIndex('i', from, to).replace(/(\d+)u/g, '$1');
      const f = new Function('i', `return ${expr.replace(/\((i \/ (\d+))\)/g, 'Math.floor($1)')};`) as (i: number) => number;
      for (let i = 0; i < numel(to); i++) {
        const c = to.map((_, d) => Math.floor(i / numel(to.slice(d + 1))) % to[d]!);
        const lead = to.length - from.length;
        const want = from.reduce((acc, n, d) => acc * n + (n === 1 ? 0 : c[d + lead]!), 0);
        expect(Math.floor(f(i)), `${from} -> ${to} at ${i}: ${expr}`).toBe(want);
      }
    }
  });
});

describe('every shader of the samples binds exactly its kernel slices', () => {
  const lowerings = [
    ['planned', (g: Parameters<typeof compileProgram>[0]) => compileProgram(g, WEBGPU_PORTABLE)],
    ['naive', lowerNaive],
  ] as const;
  it.each(SAMPLES.flatMap((s) => lowerings.flatMap(([how, lower]) => (['train', 'eval'] as const).map((stage) => [s, stage, how, lower] as const))))('%s %s (%s)', async (sample, stage, how, lower) => {
    const p = lower(await sampleGraph(sample, stage, 8));
    const w = emitWgsl(p, { seed: 1 });
    for (const k of w.kernels) {
      for (const d of k.dispatches) {
        const r = reflectShader(d.code);
        expect(r.workgroupSize[0] * r.workgroupSize[1] * r.workgroupSize[2]).toBe(d.workgroupSize);
        // The fusion pass sizes kernels to the target's storage buffers per stage.
        if (how === 'planned') expect(r.bindings.filter((b) => b.type === 'storage').length, k.kernel.name).toBeLessThanOrEqual(WEBGPU_PORTABLE.maxStorageBuffers);
        for (const b of d.bindings) if (b.kind === 'arena') expect(b.slice.offset % 256).toBe(0);
      }
    }
    if (sample === 'simple-cnn' && stage === 'train' && how === 'planned') {
      // The GPU target: at most 8 dispatches per training step.
      expect(w.kernels.reduce((n, k) => n + k.dispatches.length, 0)).toBeLessThanOrEqual(8);
    }
  });

  it('a shader that binds a slice outside its kernel, or leaves an output unwritten, is refused', async () => {
    const p = compileProgram(await sampleGraph('mlp', 'eval', 4), WEBGPU_PORTABLE);
    const w = emitWgsl(p, { seed: 1 });
    const [k0, k1] = w.kernels;
    // k1's shaders checked against k0's slices.
    expect(() => checkBindings(p, k0!.kernel, k1!.dispatches)).toThrow(/none of the kernel's slices|written by no shader/);
    expect(() => checkBindings(p, k0!.kernel, [])).toThrow(/written by no shader/);
  });
});
