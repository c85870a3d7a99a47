import type { Target } from '../../ir/target.ts';
import { WASM_TARGET } from '../../codegen/wasm-simd/target.ts';

/**
 * The reference backend binds nothing either, and compiles as the wasm backend does, so that
 * `--backend reference` runs the very Programs of the default backend: the oracle for them.
 */
export const REFERENCE_TARGET: Target = { ...WASM_TARGET, name: 'reference' };
