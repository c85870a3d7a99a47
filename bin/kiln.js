#!/usr/bin/env node
// Runs the CLI bundle, dist/kiln.mjs. In a checkout (scripts/build.js is there) it first rebuilds
// the bundle when any source file is newer, so a fresh clone needs only `npm install` and a source
// edit shows up on the next run. An installed package carries the bundle prebuilt (`prepack`) and
// not the build script: it runs the bundle as it is and never loads esbuild here. A command that
// opens a WebGPU device runs as a child behind a stderr filter (quiet-dawn.js).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FILTERED_ENV, opensDawn, runFiltered } from './quiet-dawn.js';

const root = new URL('../', import.meta.url);
const build = new URL('scripts/build.js', root);
const bundle = new URL('dist/kiln.mjs', root);

if (existsSync(build)) {
  const { buildCli, cliBundleStale } = await import(build.href);
  if (cliBundleStale()) await buildCli();
} else if (!existsSync(bundle)) {
  process.stderr.write(`kiln: ${fileURLToPath(bundle)} is missing: this package was packed without running its prepack script (npm run build)\n`);
  process.exit(1);
}
// kiln's own stack frames in its sources (dist/kiln.mjs.map) when a stack is asked for.
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
if (opensDawn(process.argv.slice(2)) && process.env[FILTERED_ENV] === undefined) runFiltered(fileURLToPath(import.meta.url));
else await import(bundle.href);
