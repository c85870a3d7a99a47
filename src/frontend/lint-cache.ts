// Remembers model files that passed the linter, so an unchanged model is not type-checked again:
// the check loads the TypeScript compiler and ES2022's lib (~0.35 s of every `kiln train` on
// this machine otherwise). A pass is keyed by the model's text, the text of each local file it
// imports, and the kiln that checked it; failures are never stored, so an error is re-derived
// (and re-located) on every run. The cache is a folder of small JSON files: deleting it is safe.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kilnStamp, sha256 } from '../runtime/kiln-cache.ts';
import { writeFileAtomic } from '../runtime/output-file.ts';

interface Entry {
  /** Local files the model imports (absolute paths) and the sha256 of each one's text. */
  deps: [string, string][];
}

/** Whether `file` with this text passed the linter of this very kiln, its imports unchanged. */
export function lintPassed(dir: string, file: string, text: string): boolean {
  try {
    const entry = JSON.parse(readFileSync(entryPath(dir, file, text), 'utf8')) as Entry;
    return entry.deps.every(([path, hash]) => existsSync(path) && sha256(readFileSync(path, 'utf8')) === hash);
  } catch {
    return false;
  }
}

/** Records a pass. A cache that cannot be written only costs the next run its time. */
export function recordLintPass(dir: string, file: string, text: string, deps: readonly string[]): void {
  try {
    mkdirSync(join(dir, 'lint'), { recursive: true });
    const entry: Entry = { deps: deps.map((p) => [p, sha256(readFileSync(p, 'utf8'))]) };
    writeFileAtomic(entryPath(dir, file, text), JSON.stringify(entry));
  } catch {
    // read-only home, full disk: lint again next time
  }
}

function entryPath(dir: string, file: string, text: string): string {
  return join(dir, 'lint', `${sha256(`${kilnStamp()}\0${file}\0${text}`)}.json`);
}
