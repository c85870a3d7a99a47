import type { ParityBackend } from './backends.ts';

/**
 * The wasm backend in the parity suite: programs run once on one thread (runProgramOnce), and
 * training steps on two threads, so the threaded kernels' splits are checked too. `relaxed:
 * false` is the plain SIMD128 build (no relaxed_madd) that browsers without relaxed SIMD get.
 */
export function wasm(relaxed?: false): () => Promise<ParityBackend> {
  return async () => {
    const { runProgramOnce } = await import('../wasm/run-program.ts');
    const { createWasmBackend } = await import('../../../src/runtime/wasm/compile.ts');
    const { WASM_TARGET } = await import('../../../src/codegen/wasm-simd/target.ts');
    return {
      name: relaxed === false ? 'wasm, plain SIMD' : 'wasm',
      unavailable: async () => undefined,
      target: () => WASM_TARGET,
      runProgram: (p, feeds, reads, opts) => runProgramOnce(p, feeds, reads, { ...opts, relaxed }),
      open: (steps, initial, batchSize, seed, lower) => createWasmBackend(steps, initial, batchSize, seed, { threads: 2, relaxed, lower }),
      close: async () => {},
    };
  };
}
