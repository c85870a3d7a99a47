import v8 from 'node:v8';

/** (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0))) */
function relaxedProbe(): Uint8Array<ArrayBuffer> {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
    0x03, 0x02, 0x01, 0x00,
    0x0a, body.length + 2, 0x01, body.length, ...body,
  ]);
}

let relaxed: boolean | undefined;

/**
 * Whether this runtime runs relaxed SIMD (f32x4.relaxed_madd: one fused multiply-add). Node 20
 * needs --experimental-wasm-relaxed-simd; V8 takes the flag at run time, before the first module
 * that uses it is compiled, so it is set here rather than asked of the user. Later Nodes ship the
 * feature on by default.
 */
export function relaxedSimdSupported(): boolean {
  if (relaxed !== undefined) return relaxed;
  const probe = relaxedProbe();
  if (!WebAssembly.validate(probe)) {
    try {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // not V8, or flags frozen: plain SIMD it is
    }
  }
  relaxed = WebAssembly.validate(probe);
  return relaxed;
}
