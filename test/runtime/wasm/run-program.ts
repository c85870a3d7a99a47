import { CTRL, CTRL_BYTES, IMPORTS, MAX_PAGES, PAGE, waitImport } from '../../../src/codegen/wasm-simd/abi.ts';
import { loadBinaryen } from '../../../src/codegen/wasm-simd/emitter.ts';
import { layoutState } from '../../../src/codegen/wasm-simd/layout.ts';
import { buildModule } from '../../../src/codegen/wasm-simd/module.ts';
import type { Program, Slice } from '../../../src/ir/program.ts';
import { numel } from '../../../src/ir/shape.ts';
import { relaxedSimdSupported } from '../../../src/runtime/wasm/features.ts';

export interface RunOnceOptions {
  seed?: number;
  /** Written to the step input's slice, when the Program has one. */
  step?: number;
  relaxed?: boolean;
}

/**
 * Runs one step of any Program once, on one thread, over a fresh zeroed arena: `writes` are raw
 * bytes at arena offsets (persistent tensors included: they are copied to their fixed places),
 * then the constants, then the step; returns the `reads` slices. For kernel-by-kernel parity
 * tests; training uses WasmBackend.
 */
export async function runProgramOnce(p: Program, writes: readonly { offset: number; data: Float32Array }[], reads: readonly Slice[], opts: RunOnceOptions = {}): Promise<Float32Array[]> {
  await loadBinaryen();
  const relaxed = opts.relaxed ?? relaxedSimdSupported();
  const layout = layoutState(p.state.map((s) => ({ name: s.name, shape: [s.slice.bytes / 4] })));
  const built = buildModule(p, { threads: 1, relaxed, layout });
  const memory = new WebAssembly.Memory({ initial: Math.ceil(built.memoryBytes / PAGE), maximum: MAX_PAGES });
  const f32 = (addr: number, n: number) => new Float32Array(memory.buffer, addr, n);
  new Int32Array(memory.buffer, 0, CTRL_BYTES / 4)[CTRL.SEED / 4] = opts.seed ?? 0;
  for (const w of writes) f32(layout.arenaBase + w.offset, w.data.length).set(w.data);
  const bytes = new Uint8Array(memory.buffer);
  for (const s of p.state) bytes.copyWithin(built.addr(s.slice), layout.arenaBase + s.slice.offset, layout.arenaBase + s.slice.offset + s.slice.bytes);
  for (const c of p.constants) f32(built.addr(c.slice), 1)[0] = c.value;
  if (opts.step !== undefined && p.inputs.step) f32(built.addr(p.inputs.step), 1)[0] = opts.step;
  const module = new WebAssembly.Module(built.binary as Uint8Array<ArrayBuffer>);
  const instance = new WebAssembly.Instance(module, { [IMPORTS.module]: { [IMPORTS.memory]: memory, [IMPORTS.wait]: waitImport(memory) } });
  const status = (instance.exports.step as (tid: number) => number)(0);
  if (status !== 0) throw new Error(`wasm step returned ${status}`);
  return reads.map((s) => f32(built.addr(s), Math.max(1, numel(s.shape))).slice());
}
