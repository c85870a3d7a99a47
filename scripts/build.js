#!/usr/bin/env node
// The CLI bundle: src/cli/main.ts bundled by esbuild into dist/kiln.mjs. `npm run build` builds
// it now; bin/kiln.js builds it on first use and whenever a source file is newer.
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
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
  // The source map beside the bundle, not inline: 1.9 MB of base64 that every start parsed, a
  // fifth of `kiln --help` (0.26 s -> 0.20 s). bin/kiln.js turns source maps on for --debug.
  const result = buildSync({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'external',
    outfile: cliBundle,
    write: false,
    logLevel: 'error',
  });
  const code = result.outputFiles.find((f) => f.path === cliBundle);
  const map = result.outputFiles.find((f) => f.path === `${cliBundle}.map`);
  // Each written beside its target and renamed, the map first, so concurrent runs never import a
  // half-written bundle or one whose map is missing.
  for (const [file, text] of [[`${cliBundle}.map`, map.text], [cliBundle, `${code.text}//# sourceMappingURL=${basename(cliBundle)}.map\n`]]) {
    const tmp = `${file}.${process.pid}.tmp`;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await buildCli();
