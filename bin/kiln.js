#!/usr/bin/env node
// Runs the CLI from dist/, rebuilding it when any source file is newer, so a fresh clone needs
// only `npm install` and a source edit shows up on the next run.
import { pathToFileURL } from 'node:url';
import { buildCli, cliBundle, cliBundleStale } from '../scripts/build.js';

if (cliBundleStale()) await buildCli();
await import(pathToFileURL(cliBundle).href);
