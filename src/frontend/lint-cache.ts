// Which model files passed the linter, so that an unchanged model run again skips it: loading the
// linter's TypeScript and type-checking kiln's API against the model is most of what `kiln train`
// does before its first line (~0.85 of ~1.1 s of CPU in a --cpu-prof run). A verdict is keyed by
// the CLI bundle that reached it (rebuilt whenever a kiln source changes, fixed in an installed
// package) and the model's text, and holds only while every other file the type checker read (the
// model's own imports) is unchanged. Only passes are kept: a failing model is linted again, to
// report itself. Run from the sources (the tests), nothing is cached.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kilnRoot } from './source-loc.ts';

export const LINT_CACHE_DIR = join(kilnRoot, '.kiln-cache', 'lint');

export interface LintCache {
  /** Whether this model, as it is now, passed this kiln's linter before. */
  passed(): boolean;
  /** Records a pass; `sources` are the files the type checker read besides kiln's own. */
  remember(sources: readonly string[]): void;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** This kiln's linter and API, as the CLI bundle running now; undefined when run from the sources. */
function kilnIdentity(): string | undefined {
  const self = fileURLToPath(import.meta.url);
  if (!self.endsWith('.mjs')) return undefined;
  const s = statSync(self);
  return `${self}:${s.size}:${s.mtimeMs}`;
}

/** The verdicts for the model at `path` with this text; undefined where nothing is cached (run from the sources). */
export function lintCache(path: string, text: string, { kiln = kilnIdentity(), dir = LINT_CACHE_DIR } = {}): LintCache | undefined {
  if (kiln === undefined) return undefined;
  const model = resolve(path);
  const entry = join(dir, `${sha256(JSON.stringify([kiln, model, text]))}.json`);
  return {
    passed() {
      try {
        const { sources } = JSON.parse(readFileSync(entry, 'utf8')) as { sources: [string, string][] };
        return sources.every(([file, hash]) => sha256(readFileSync(file)) === hash);
      } catch {
        return false;
      }
    },
    remember(sources) {
      try {
        mkdirSync(dir, { recursive: true });
        // Written beside and renamed, so a concurrent run never reads half an entry.
        const tmp = `${entry}.${process.pid}.tmp`;
        writeFileSync(tmp, JSON.stringify({ model, sources: sources.map((f) => [f, sha256(readFileSync(f))]) }));
        renameSync(tmp, entry);
      } catch {
        // A read-only install: the model is linted on every run.
      }
    },
  };
}
