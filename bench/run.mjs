#!/usr/bin/env node
// Runs a TypeScript benchmark script of this folder: bundles it with esbuild into dist/ (as
// bin/kiln.js does for the CLI) and imports it. Usage: node bench/run.mjs bench/wasm-simple-cnn.ts [args]
import { buildSync } from 'esbuild';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = resolve(process.argv[2] ?? '');
const out = join(root, 'dist', `bench-${basename(entry).replace(/\.ts$/, '')}.${process.pid}.mjs`);
buildSync({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: out, logLevel: 'error' });
process.argv.splice(2, 1);
try {
  await import(pathToFileURL(out).href);
} finally {
  (await import("node:fs")).rmSync(out, { force: true });
}
