import type { Program } from '../ir/program.ts';
import type { Shape } from '../ir/shape.ts';
import type { WgslDispatch } from './wgsl/shader.ts';

/**
 * Compiled steps as a backend loads them: everything needed to run a step and nothing of the
 * compiler. `kiln train` makes them in memory; `kiln compile --standalone` writes them to a
 * folder, where kiln-runtime.mjs runs them with no compiler present. All plain data (JSON, plus
 * the wasm bytes).
 */

/** Where a step reads and writes a tensor in the wasm memory: an absolute byte address and a shape. */
export interface WasmTensor {
  readonly addr: number;
  readonly shape: Shape;
}

/** One step's WebAssembly module and what the host writes and reads around a call to its `step`. */
export interface WasmStep {
  readonly stage: 'train' | 'eval';
  readonly batchSize: number;
  /** Threads the module splits its work for: it must be run by exactly this many. */
  readonly threads: number;
  /** Whether it uses f32x4.relaxed_madd (needs relaxed SIMD). */
  readonly relaxed: boolean;
  readonly binary: Uint8Array;
  /** Bytes of linear memory the module uses: control, state, arena and scratch. */
  readonly memoryBytes: number;
  readonly x: WasmTensor;
  readonly labels: WasmTensor;
  /** The step counter's f32 (training steps). */
  readonly step?: WasmTensor;
  /** The other per-step scalar inputs, by name: a scheduled optimizer's lr and momentum. */
  readonly scalars?: Readonly<Record<string, WasmTensor>>;
  readonly loss: WasmTensor;
  readonly logits: WasmTensor;
  /** Scalars the kernels read, written before the module first runs (its arena overlaps other modules'). */
  readonly constants: readonly { readonly addr: number; readonly value: number }[];
  /** The kernels in order, for profiles. */
  readonly kernels: readonly { readonly name: string; readonly kind: string }[];
}

/** Where every persistent tensor lives in the wasm memory (the same for every module of a run). */
export interface WasmStateLayout {
  readonly state: readonly { readonly name: string; readonly addr: number; readonly shape: Shape }[];
  readonly arenaBase: number;
}

/** One dispatch as the WebGPU runtime loads it: the shader, its grid, its bindings and their reflected layout. */
export interface WgslStepDispatch extends WgslDispatch {
  readonly entryPoint: string;
  /** Per binding (same order as `bindings`): what the shader declares (read back with wgsl_reflect). */
  readonly layout: readonly { readonly binding: number; readonly type: 'storage' | 'uniform'; readonly minBytes: number }[];
}

/** One step's WGSL dispatches over its Program's arena. */
export interface WgslStep {
  readonly program: Program;
  readonly dispatches: readonly WgslStepDispatch[];
}
