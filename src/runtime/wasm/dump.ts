import { availableParallelism } from 'node:os';
import { loadBinaryen } from '../../codegen/wasm-simd/emitter.ts';
import { layoutState } from '../../codegen/wasm-simd/layout.ts';
import { buildModule } from '../../codegen/wasm-simd/module.ts';
import type { Program } from '../../ir/program.ts';
import { relaxedSimdSupported } from './features.ts';

/** The text of the module WasmBackend builds for a Program (`kiln ir --stage wasm`), kernel by kernel. */
export async function wasmText(p: Program, threads = availableParallelism()): Promise<string> {
  await loadBinaryen();
  const relaxed = relaxedSimdSupported();
  const layout = layoutState(p.state.map((s) => ({ name: s.name, shape: s.slice.shape })));
  const built = buildModule(p, { threads, relaxed, layout, text: true });
  return `;; ${threads} thread${threads > 1 ? 's' : ''}, ${relaxed ? 'relaxed SIMD (f32x4.relaxed_madd)' : 'SIMD128'}, ${built.binary.length} bytes\n${built.text!}`;
}
