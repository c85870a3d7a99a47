import { describe, expect, it } from 'vitest';
import { graphFor } from '../../../src/cli/graphs.ts';
import { CTRL_BYTES } from '../../../src/codegen/wasm-simd/abi.ts';
import { loadBinaryen } from '../../../src/codegen/wasm-simd/emitter.ts';
import { addressOf, layoutState } from '../../../src/codegen/wasm-simd/layout.ts';
import { buildModule } from '../../../src/codegen/wasm-simd/module.ts';
import { viewAliases } from '../../../src/codegen/wasm-simd/views.ts';
import { loadModelFile } from '../../../src/frontend/loader.ts';
import { WASM_TARGET } from '../../../src/codegen/wasm-simd/target.ts';
import { compileProgram } from '../../../src/passes/compile.ts';
import { lowerNaive } from '../../passes/lower-naive.ts';
import { relaxedSimdSupported } from '../../../src/runtime/wasm/features.ts';

// The module builder on the samples' Programs: valid wasm for every configuration, the text dump
// kernel by kernel, and the memory layout's rules.

describe('wasm module builder', () => {
  it.each(['samples/simple-cnn.ts', 'samples/lenet.ts', 'samples/mlp.ts'])('%s: valid modules for train and eval, 1 and 2 threads, relaxed and plain SIMD', async (file) => {
    await loadBinaryen();
    const relaxed = relaxedSimdSupported();
    const loaded = await loadModelFile(file, { lint: false });
    for (const stage of ['train', 'eval'] as const) {
      const g = graphFor(loaded, stage, { batchSize: 8, optimizer: loaded.training.optimizer });
      for (const p of [compileProgram(g, WASM_TARGET), lowerNaive(g)]) {
        const layout = layoutState(g.state);
        for (const threads of [1, 2])
          for (const r of relaxed ? [true, false] : [false]) {
            const m = buildModule(p, { threads, relaxed: r, layout });
            expect(WebAssembly.validate(m.binary as Uint8Array<ArrayBuffer>)).toBe(true);
            expect(m.kernels.map((k) => k.kind)).toEqual(p.kernels.map((k) => k.kind));
            expect(m.memoryBytes).toBeGreaterThanOrEqual(layout.arenaBase + p.memory.arenaBytes);
          }
      }
    }
  });

  it('dumps the module text kernel by kernel', async () => {
    await loadBinaryen();
    const loaded = await loadModelFile('samples/simple-cnn.ts', { lint: false });
    const g = graphFor(loaded, 'train', { batchSize: 8, optimizer: loaded.training.optimizer });
    const p = compileProgram(g, WASM_TARGET);
    const text = buildModule(p, { threads: 2, relaxed: false, layout: layoutState(g.state), text: true }).text!;
    for (const k of p.kernels) expect(text).toContain(`;; ---- kernel ${k.name}: ${k.kind}`);
    expect(text).toMatch(/\(func \$k0_conv_block \(param \$0 i32\)/);
    expect(text).toMatch(/\(func \$barrier/);
    expect(text).toMatch(/\(export "step" \(func \$step\)\)/);
  });

  it('puts persistent tensors at fixed addresses after the control block, and moves slices inside them along', async () => {
    const loaded = await loadModelFile('samples/simple-cnn.ts', { lint: false });
    const g = graphFor(loaded, 'train', { batchSize: 4, optimizer: loaded.training.optimizer });
    const layout = layoutState(g.state);
    expect(Math.min(...[...layout.state.values()].map((s) => s.addr))).toBe(CTRL_BYTES);
    const p = compileProgram(g, WASM_TARGET);
    const addr = addressOf(p, layout);
    for (const s of p.state) expect(addr(s.slice)).toBe(layout.state.get(s.name)!.addr);
    const w = p.state.find((s) => s.name === 'fc1.weight')!.slice;
    expect(addr({ offset: w.offset + 64, bytes: 16, shape: [4] })).toBe(layout.state.get('fc1.weight')!.addr + 64);
    expect(() => addr({ offset: w.offset - 4, bytes: 16, shape: [4] })).toThrow(/straddles/);
  });

  it('reads a reshape from its input when nothing overwrites it in between', async () => {
    const loaded = await loadModelFile('samples/simple-cnn.ts', { lint: false });
    const g = graphFor(loaded, 'train', { batchSize: 4, optimizer: loaded.training.optimizer });
    const p = lowerNaive(g);
    const alias = viewAliases(p);
    const reshapes = p.kernels.filter((k) => k.kind === 'reshape');
    expect(reshapes.length).toBeGreaterThan(0);
    for (const k of reshapes) expect(alias(k.outputs[0]!).offset).toBe(alias(k.inputs[0]!).offset);
  });
});
