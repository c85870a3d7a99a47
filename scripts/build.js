#!/usr/bin/env node
// The CLI bundle: src/cli/main.ts bundled by esbuild into dist/kiln.mjs, and what its commands
// import on demand into dist/chunks/. `npm run build` builds it now; bin/kiln.js builds it on
// first use and whenever a source file is newer.
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const distDir = join(root, 'dist');
const chunkDir = join(distDir, 'chunks');
export const cliBundle = join(distDir, 'kiln.mjs');

// One recursive readdir and a stat per file: the recursion by hand, a readdir per folder, took
// about three times as long, and every `kiln` run in a checkout pays it.
function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isDirectory()) newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return newest;
}

export function cliBundleStale() {
  return !existsSync(cliBundle) || statSync(cliBundle).mtimeMs < newestSource(join(root, 'src'));
}

/**
 * Builds the entry and its chunks. `pruneAll` (npm run build, prepack) removes every chunk the new
 * entry does not import; a rebuild on a run (bin/kiln.js) leaves those of the last hour, which a
 * run that started on the old entry may still import.
 */
export async function buildCli({ pruneAll = false } = {}) {
  // Imported here, not above: a CLI run whose bundle is fresh never loads esbuild.
  const { buildSync } = await import('esbuild');
  // Split: main.ts imports each command's module on demand, and a chunk is only parsed when
  // imported, so `kiln --help` reads commander's setup and not the compiler (0.18 s -> 0.14 s here; an
  // empty node 0.08 s).
  // The source maps beside the files, not inline: 1.9 MB of base64 that every start parsed.
  // bin/kiln.js turns source maps on for --debug.
  const result = buildSync({
    entryPoints: { kiln: join(root, 'src', 'cli', 'main.ts') },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    outdir: distDir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    write: false,
    logLevel: 'error',
  });
  // Chunks are named by their content's hash, so a new build's chunks never overwrite the ones an
  // older entry imports. Each file is written beside its target and renamed, the maps first and
  // the entry last, so concurrent runs never import a half-written file or a missing chunk.
  const entryFirst = (f) => (f.path === cliBundle ? 2 : f.path === `${cliBundle}.map` ? 1 : 0);
  const files = [...result.outputFiles].sort((a, b) => entryFirst(a) - entryFirst(b) || Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')));
  for (const f of files) {
    const tmp = `${f.path}.${process.pid}.tmp`;
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(tmp, f.contents);
    renameSync(tmp, f.path);
  }
  const written = new Set(files.map((f) => f.path));
  if (existsSync(chunkDir)) {
    for (const name of readdirSync(chunkDir)) {
      const p = join(chunkDir, name);
      if (!written.has(p) && (pruneAll || statSync(p).mtimeMs < Date.now() - 3600_000)) rmSync(p, { force: true });
    }
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await buildCli({ pruneAll: true });
