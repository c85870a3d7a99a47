import { MAX_PAGES, PAGE } from '../../codegen/wasm-simd/abi.ts';
import { KilnError } from '../../ir/errors.ts';

/** WebAssembly's memory: at most 4 GiB, holding a step's arena, the persistent tensors and scratch. */
export const WASM_MEMORY_BYTES = MAX_PAGES * PAGE;

const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

/**
 * A step that needs more than WebAssembly's memory: the user's to fix, with a batch size that
 * fits. `fixedBytes` (weights and optimizer state) do not scale with the batch; the rest is taken
 * as proportional to it, less 5% for the parts that are not.
 */
export function tooLargeForWasm(what: string, batch: number, needBytes: number, fixedBytes: number, detail = ''): KilnError {
  const fits = Math.floor((0.95 * batch * (WASM_MEMORY_BYTES - fixedBytes)) / Math.max(1, needBytes - fixedBytes));
  return new KilnError(
    'resources',
    `${what} needs ${gib(needBytes)}${detail}; WebAssembly memory is at most 4 GiB`,
    undefined,
    fixedBytes < WASM_MEMORY_BYTES && fits >= 1 ? `use --batch-size ${fits} or less` : 'the weights alone do not fit: make the model smaller',
  );
}
