import { accessSync, constants, existsSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KilnError } from '../ir/errors.ts';

const HINT = 'check that the directory exists and is writable';

/**
 * Writes through a temporary file beside `path`, then renames it over: a failed write, a full
 * disk or a kill never leaves half a file where a whole one is expected.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, what = 'file', hint = HINT): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    // Node's message ends with the temporary file's name (`, open '<tmp>'`, `, rename '<tmp>' ->
    // '<path>'`), which is not the user's business: the path is named already.
    const reason = (e as Error).message.replace(/, \w+ '[^']*'( -> '[^']*')?$/, '');
    throw new KilnError('io', `cannot write ${what} ${path}: ${reason}`, undefined, hint);
  }
}

/**
 * Fails at once, naming the flag, when `path` could not be written later: long work (training,
 * a benchmark) must not end by losing its result to a typo in a directory name.
 */
export function checkWritable(flag: string, path: string): void {
  const abs = resolve(path);
  const dir = dirname(abs);
  const problem =
    existsSync(abs) && statSync(abs).isDirectory()
      ? 'is a directory'
      : !existsSync(dir)
        ? `directory ${dir} does not exist`
        : !statSync(dir).isDirectory()
          ? `${dir} is not a directory`
          : !canWrite(dir)
            ? `directory ${dir} is not writable`
            : undefined;
  if (problem) throw new KilnError('usage', `${flag} ${path}: ${problem}`, undefined, 'pass a file path in an existing, writable directory');
}

function canWrite(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
