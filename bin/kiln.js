#!/usr/bin/env node
// Runs the CLI from dist/, rebuilding it when any source file is newer, so a fresh clone needs
// only `npm install` and a source edit shows up on the next run.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildCli, cliBundle, cliBundleStale } from '../scripts/build.js';
import { FILTERED_ENV, opensDawn, runFiltered } from './quiet-dawn.js';

if (cliBundleStale()) await buildCli();
if (opensDawn(process.argv.slice(2)) && process.env[FILTERED_ENV] === undefined) runFiltered(fileURLToPath(import.meta.url));
else await import(pathToFileURL(cliBundle).href);
