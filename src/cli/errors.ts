import { KilnError } from '../ir/errors.ts';

/** Turns a thrown value into what the user sees and an exit code; a stack only with --debug. */
export function reportError(e: unknown, debug: boolean): number {
  if (e instanceof KilnError) {
    process.stderr.write(`error: ${e.format()}\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`internal error: ${err.message}\n`);
  process.stderr.write(debug ? `${err.stack}\n` : '  hint: this is a bug in kiln; rerun with --debug for the stack trace and report it\n');
  return 2;
}
