import { readFileSync } from 'node:fs';
import { KilnError } from '../ir/errors.ts';
import type { Program } from '../ir/program.ts';
import { writeFileAtomic } from '../runtime/output-file.ts';
import type { ResolvedTraining } from './training-options.ts';

/**
 * A compiled model in one file (`kiln compile`): the model's code bundled by esbuild (so steps
 * of other batch sizes can still be traced), the training options it was compiled with, and the
 * planned Programs of its training and evaluation steps, keyed `train/64`, `eval/1000`.
 * Running a bundle skips the linter, esbuild and the compiler passes for those steps.
 */
export interface Bundle {
  readonly format: 'kiln-bundle';
  readonly version: 1;
  readonly name: string;
  /** The model file it was compiled from, for messages. */
  readonly file: string;
  readonly code: string;
  readonly training: ResolvedTraining;
  readonly programs: Readonly<Record<string, Program>>;
}

export const BUNDLE_EXT = '.kiln';

export function programKey(stage: string, batchSize: number): string {
  return `${stage}/${batchSize}`;
}

/** Written to a temporary file and renamed, so a failed write never leaves half a bundle. */
export function writeBundle(path: string, bundle: Bundle): void {
  writeFileAtomic(path, JSON.stringify(bundle), 'bundle', 'choose a writable path with -o');
}

export function readBundle(path: string, file: string): Bundle {
  const fail = (what: string): never => {
    throw new KilnError('bundle', `${file} is not a kiln bundle: ${what}`, undefined, 'rebuild it with `kiln compile MODEL.ts -o FILE.kiln`');
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail(`it does not parse as JSON (${(e as Error).message})`);
  }
  const b = parsed as Partial<Bundle>;
  if (b.format !== 'kiln-bundle') fail('no "format": "kiln-bundle" field');
  if (b.version !== 1) fail(`version ${String(b.version)} is not supported by this kiln (it reads version 1)`);
  if (typeof b.code !== 'string' || typeof b.name !== 'string' || typeof b.training !== 'object' || typeof b.programs !== 'object') fail('fields are missing or of the wrong type');
  return b as Bundle;
}
