/** safetensors files in Node: the file I/O around safetensors.ts's bytes. */
import { readFileSync } from 'node:fs';
import { KilnError } from '../ir/errors.ts';
import { writeFileAtomic } from './output-file.ts';
import { decodeSafetensors, encodeSafetensors, type Safetensors, type Tensor } from './safetensors.ts';

/** What a safetensors file is to the command reading it, and how kiln writes one. */
const KINDS = {
  checkpoint: 'kiln train --checkpoint FILE writes one',
  'weights file': 'kiln train --save FILE writes one (a checkpoint holds weights too)',
} as const;

/** The bytes of the file at `path`; a missing or unreadable file is a KilnError naming it and what it is. */
export function readSafetensorsBytes(path: string, what: keyof typeof KINDS = 'checkpoint'): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? `${what} not found` : code === 'EISDIR' ? `is a directory, not a ${what}` : `cannot read ${what} (${(e as Error).message})`;
    throw new KilnError('checkpoint', `${path}: ${problem}`, undefined, `check the path; ${KINDS[what]}`);
  }
}

/**
 * Writes the bytes atomically: a temporary file in the same directory, then a rename, so a crash
 * mid-write never leaves a half checkpoint under the real name.
 */
export function writeSafetensorsBytes(path: string, bytes: Uint8Array, what: keyof typeof KINDS = 'checkpoint'): void {
  writeFileAtomic(path, bytes, what);
}

/** Reads and validates a safetensors file; every problem is a KilnError naming the file. */
export function readSafetensors(path: string): Safetensors {
  return decodeSafetensors(readSafetensorsBytes(path), path);
}

/** Writes `tensors` and string metadata as encodeSafetensors lays them out, atomically. */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeSafetensorsBytes(path, encodeSafetensors(tensors, metadata));
}
