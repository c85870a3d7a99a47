import { existsSync } from 'node:fs';
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
 * called into kiln. Stack positions are the original TypeScript ones because the loader bundles
 * model files with inline source maps and enables source-mapped stacks. Pass an error's stack to
 * find where in the model it was thrown.
 */
export function callerLoc(stack = currentStack()): SourceLoc | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = decodeURIComponent(m[1]!);
    if (ownDirs.some((d) => file.startsWith(d)) || file.includes(`${sep}node_modules${sep}`)) continue;
    return { file: relative(process.cwd(), file) || file, line: Number(m[2]), col: Number(m[3]) };
  }
  return undefined;
}

function currentStack(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack;
}
