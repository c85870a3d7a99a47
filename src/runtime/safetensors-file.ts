/** safetensors files in Node: the file I/O around safetensors.ts's bytes. */
import { readFileSync } from 'node:fs';
import { KilnError } from '../ir/errors.ts';
import { writeFileAtomic } from './output-file.ts';
import { decodeSafetensors, encodeSafetensors, type Safetensors, type Tensor } from './safetensors.ts';

/** The bytes of the file at `path`; a missing or unreadable file is a KilnError naming it. */
export function readSafetensorsBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KilnError('checkpoint', `${path}: ${code === 'ENOENT' ? 'checkpoint not found' : `cannot read checkpoint (${(e as Error).message})`}`,
      undefined, 'check the path; kiln writes checkpoints with kiln train --save');
  }
}

/**
 * Writes the bytes atomically: a temporary file in the same directory, then a rename, so a crash
 * mid-write never leaves a half checkpoint under the real name.
 */
export function writeSafetensorsBytes(path: string, bytes: Uint8Array): void {
  writeFileAtomic(path, bytes, 'checkpoint');
}

/** Reads and validates a safetensors file; every problem is a KilnError naming the file. */
export function readSafetensors(path: string): Safetensors {
  return decodeSafetensors(readSafetensorsBytes(path), path);
}

/** Writes `tensors` and string metadata as encodeSafetensors lays them out, atomically. */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeSafetensorsBytes(path, encodeSafetensors(tensors, metadata));
}
