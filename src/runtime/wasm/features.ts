import v8 from 'node:v8';
import { relaxedSimdValid } from './relaxed-probe.ts';

let relaxed: boolean | undefined;

/**
 * Whether this runtime runs relaxed SIMD (f32x4.relaxed_madd: one fused multiply-add). Node 20
 * needs --experimental-wasm-relaxed-simd; V8 takes the flag at run time, before the first module
 * that uses it is compiled, so it is set here rather than asked of the user. Later Nodes ship the
 * feature on by default.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxed !== undefined) return relaxed;
  if (!relaxedSimdValid()) {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // not V8, or flags frozen: plain SIMD it is
    }
  }
  relaxed = relaxedSimdValid();
  return relaxed;
}
