// The user's cache folder and what keys its entries: the lint verdicts of model files
// (src/frontend/lint-cache.ts) and built wasm modules (src/runtime/wasm/step-cache.ts). Every
// entry is derived data: deleting the folder is always safe, and a cache that cannot be read or
// written only costs a run the time it would have saved.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kilnRoot } from '../frontend/source-loc.ts';

/**
 * The user's cache folder for kiln: `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else
 * `~/.cache/kiln`; null when `KILN_CACHE_DIR=off`.
 */
export function kilnCacheDir(): string | null {
  const env = process.env.KILN_CACHE_DIR;
  if (env === 'off') return null;
  if (env) return env;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kiln');
}

export function sha256(s: string | Uint8Array): string {
  return createHash('sha256').update(s).digest('hex');
}

let stamp: string | undefined;
/**
 * Which kiln this is: the newest change to its sources (a checkout; bin/kiln.js rebuilds the CLI
 * from them), else the running bundle itself (an installed package ships no sources). Part of
 * every key, so an edited or upgraded kiln never reads what another one wrote.
 */
export function kilnStamp(): string {
  if (stamp === undefined) {
    const src = join(kilnRoot, 'src');
    const newest = existsSync(src) ? newestMtime(src) : statSync(fileURLToPath(import.meta.url)).mtimeMs;
    const version = (JSON.parse(readFileSync(join(kilnRoot, 'package.json'), 'utf8')) as { version: string }).version;
    stamp = `${version}:${newest}`;
  }
  return stamp;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}
