/**
 * What the passes must know of the backend a Program is compiled for. Each backend states its
 * own (src/codegen/wasm-simd/target.ts, src/codegen/wgsl/target.ts, src/runtime/reference/target.ts)
 * and the passes have no default, so a limit of one backend never shapes another's kernels.
 */
export interface Target {
  /** For messages: whose limits these are. */
  readonly name: string;
  /**
   * Most storage buffers one kernel may bind; fusion splits kernels to stay within it. Slices of
   * one element (the step counter, scalar constants) do not count: a backend binds them as
   * uniforms. Infinity where the backend binds nothing.
   */
  readonly maxStorageBuffers: number;
  /**
   * The recompute cost model's balance (src/passes/recompute.ts): cost units per byte a stored
   * value moves through memory, against one unit per floating-point operation.
   */
  readonly flopsPerByte: number;
}
