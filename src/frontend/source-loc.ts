import { existsSync } from 'node:fs';
import { findSourceMap } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SourceLoc } from '../ir/errors.ts';

/** kiln's package folder, found from this module whether it runs from src/ or bundled in dist/. */
export const kilnRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();

// kiln's own code: frames here are skipped when looking for the model file's call.
const ownDirs = [join(kilnRoot, 'src') + sep, join(kilnRoot, 'dist') + sep];
const FRAME = /(?:\(|\s)(?:file:\/\/)?(\/[^():]+|[A-Za-z]:\\[^():]+):(\d+):(\d+)\)?$/;

/**
 * The innermost stack frame outside kiln and node_modules: the line of the model file that
 * called into kiln, in the model's own TypeScript (the loader bundles model files with inline
 * source maps). Pass an error's stack to find where in the model it was thrown.
 */
export function callerLoc(stack?: string): SourceLoc | undefined {
  return stack === undefined ? callerFromCallSites() : callerFromStackText(stack);
}

function isModelFile(file: string): boolean {
  return !ownDirs.some((d) => file.startsWith(d)) && !file.includes(`${sep}node_modules${sep}`);
}

function toLoc(file: string, line: number, col: number): SourceLoc {
  return { file: relative(process.cwd(), file) || file, line, col };
}

function callerFromStackText(stack: string): SourceLoc | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = decodeURIComponent(m[1]!);
    if (isModelFile(file)) return toLoc(file, Number(m[2]), Number(m[3]));
  }
  return undefined;
}

/**
 * The same from V8's raw call sites, mapping only the frame that matters through the bundle's
 * source map: formatting a source-mapped `new Error().stack` maps every frame and made tracing
 * cost ~50 µs per op. Where Node holds no map for the frame (vitest loads modules itself and
 * maps stacks its own way), the formatted stack is the fallback.
 */
function callerFromCallSites(): SourceLoc | undefined {
  for (const site of callSites()) {
    const name = site.getFileName();
    const [line, col] = [site.getLineNumber(), site.getColumnNumber()];
    if (!name || line === null || col === null) continue;
    const map = findSourceMap(name);
    if (!map) {
      if (isModelFile(name.startsWith('file:') ? fileURLToPath(name) : name)) return callerFromStackText(formattedStack());
      continue;
    }
    const entry = map.findEntry(line - 1, col - 1);
    if (!('originalSource' in entry)) continue;
    const source = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : entry.originalSource;
    if (isModelFile(source)) return toLoc(source, entry.originalLine + 1, entry.originalColumn + 1);
  }
  return undefined;
}

function callSites(): NodeJS.CallSite[] {
  const [prepare, limit] = [Error.prepareStackTrace, Error.stackTraceLimit];
  Error.prepareStackTrace = (_e, sites) => sites;
  Error.stackTraceLimit = 64;
  try {
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, callerLoc);
    return holder.stack ?? [];
  } finally {
    [Error.prepareStackTrace, Error.stackTraceLimit] = [prepare, limit];
  }
}

function formattedStack(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack;
}
