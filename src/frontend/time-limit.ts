import { createContext, Script } from 'node:vm';
import { KilnError, type SourceLoc } from '../ir/errors.ts';

/**
 * How long model code may run at once (a constructor, a forward pass being traced): a
 * ResNet-152's forward records ~1k ops in milliseconds, so a minute means a loop that never
 * ends. KILN_MODEL_TIME_LIMIT_MS overrides it (the tests use a short one).
 */
export function modelTimeLimitMs(): number {
  const v = Number(process.env.KILN_MODEL_TIME_LIMIT_MS);
  return Number.isFinite(v) && v > 0 ? v : 60_000;
}

/**
 * Runs model code synchronously, ended after the time limit. V8 can interrupt a loop only from a
 * watchdog, and vm's timeout is one: it terminates whatever runs while the script is on the
 * stack, the model's functions included, so `while (i >= 0) i++` in forward() is an error instead
 * of a hang (the op-count guard of the tracer only catches loops that make tensors).
 */
export function underTimeLimit<T>(what: string, at: SourceLoc | undefined, fn: () => T): T {
  const ms = modelTimeLimitMs();
  const outer = context.run;
  // Code ended by the watchdog runs no `finally`: kiln's own code on the stack at that moment
  // (source-loc.ts swaps Error.prepareStackTrace to read call sites) could leave the swap in
  // place for the rest of the process. This frame is outside what is ended, so it restores them.
  const stackTrace = [Error.prepareStackTrace, Error.stackTraceLimit] as const;
  context.run = fn;
  try {
    return RUN.runInContext(context, { timeout: ms, displayErrors: false }) as T;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      throw new KilnError('timeout', `${what} ran for more than ${ms / 1000} s; does a loop in it never end?`, at, 'loops in model code must end after a fixed number of iterations');
    }
    throw e;
  } finally {
    context.run = outer;
    [Error.prepareStackTrace, Error.stackTraceLimit] = stackTrace;
  }
}

// One context for every call (creating one costs a millisecond); `run` is the function of the
// innermost call (a constructor may build a model that is traced inside it).
const context = createContext({ run: undefined as unknown });
const RUN = new Script('run()');
