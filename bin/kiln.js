#!/usr/bin/env node
// Runs the CLI from dist/, rebuilding it with esbuild when any source file is newer, so a fresh
// clone needs only `npm install` and a source edit shows up on the next run.
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'kiln.mjs');

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

if (!existsSync(out) || statSync(out).mtimeMs < newestSource(join(root, 'src'))) {
  const { buildSync } = await import('esbuild');
  // Build beside the target and rename, so concurrent runs never import a half-written file.
  const tmp = `${out}.${process.pid}.tmp.mjs`;
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
  renameSync(tmp, out);
}
await import(pathToFileURL(out).href);
