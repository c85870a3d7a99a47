import { expect } from 'vitest';
import { KilnError } from '../../src/ir/errors.ts';

/** An IDX file: magic 0x0000<code><ndim>, big-endian dims, then `body`. */
export function idx(code: number, dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, (code << 8) | dims.length, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(body, 4 + 4 * dims.length);
  return out;
}

/** The KilnError `f` throws (fails the test if it throws anything else or nothing). */
export function thrown(f: () => unknown): KilnError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error('expected a KilnError');
}
