import type { ParityBackend } from './backends.ts';

/**
 * The wasm backend in the parity suite: programs run once on one thread (runProgramOnce), and
 * training steps on two threads, so the threaded kernels' splits are checked too.
 */
export async function wasm(): Promise<ParityBackend> {
  const { runProgramOnce } = await import('../../../src/runtime/wasm/run-program.ts');
  const { createWasmBackend } = await import('../../../src/runtime/wasm/backend.ts');
  return {
    name: 'wasm',
    unavailable: async () => undefined,
    runProgram: (p, feeds, reads, opts) => runProgramOnce(p, feeds, reads, opts),
    open: (steps, initial, batchSize, seed, lower) => createWasmBackend(steps, initial, batchSize, seed, { threads: 2, lower }),
    close: async () => {},
  };
}
