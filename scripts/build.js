#!/usr/bin/env node
// The CLI bundle: src/cli/main.ts bundled by esbuild into dist/kiln.mjs. `npm run build` builds
// it now; bin/kiln.js builds it on first use and whenever a source file is newer.
import { existsSync, readdirSync, realpathSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cliBundle = join(root, 'dist', 'kiln.mjs');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export function cliBundleStale() {
  return !existsSync(cliBundle) || statSync(cliBundle).mtimeMs < newestSource(join(root, 'src'));
}

export async function buildCli() {
  // Imported here, not above: a CLI run whose bundle is fresh never loads esbuild.
  const { buildSync } = await import('esbuild');
  // Build beside the target and rename, so concurrent runs never import a half-written file.
  const tmp = `${cliBundle}.${process.pid}.tmp.mjs`;
  buildSync({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    outfile: tmp,
    logLevel: 'error',
  });
  renameSync(tmp, cliBundle);
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await buildCli();
