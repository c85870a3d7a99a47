/**
 * What the wasm module and its runtime (src/runtime/wasm) agree on: the control block at the start
 * of linear memory, the module's imports and exports, and the abort codes.
 *
 * Linear memory (one shared WebAssembly.Memory per backend, imported by every module):
 *   [0, CTRL_BYTES)            control words, each on its own 64-byte line (no false sharing)
 *   [stateBase, +stateBytes)   every persistent tensor, one layout for all modules of a backend
 *   [arenaBase, ...)           the Program's arena (temporaries), then kernel scratch
 * Modules of one backend never run at the same time, so their arenas all start at arenaBase.
 */
export const CTRL = {
  /** Bumped by the main thread for every command to the workers. */
  BELL: 0,
  /** What the bell means: one of CMD. */
  CMD: 64,
  /** Which loaded module a RUN command runs. */
  MODULE: 128,
  /** Barrier: threads arrived so far. */
  BAR_COUNT: 192,
  /** Barrier: generation, bumped when the last thread arrives. */
  BAR_GEN: 256,
  /** Non-zero (an ABORT code) once any thread failed: every barrier returns 1 from then on. */
  ABORT: 320,
  /** Workers acknowledge a LOAD by adding 1. */
  ACK: 384,
  /** The run's seed, read by dropout kernels. */
  SEED: 448,
  /** A barrier waits at most this many milliseconds for the other threads. */
  TIMEOUT_MS: 512,
  /** Threads asleep in a barrier; the last arriver notifies only when there are some. */
  SLEEPERS: 576,
  /** Written by no one: the main thread naps on it. */
  NAP: 640,
} as const;

export const CTRL_BYTES = 1024;

export const CMD = { RUN: 1, LOAD: 2, STOP: 3 } as const;

export const ABORT = { NONE: 0, TRAP: 1, TIMEOUT: 2, STOP: 3 } as const;

/**
 * Imports every module takes: the shared memory and wait(addr, expected, ms): Atomics.wait on
 * the i32 at addr, 0 when woken, 1 when the value differed, 2 on timeout; and, in modules built
 * with `profile`, mark(kernel) after each kernel. (exp and log are the module's own, math.ts.)
 * The barrier sleeps through this import rather than
 * memory.atomic.wait32, whose timeout Node 20's baseline compiler (Liftoff) can lose inside a
 * loop, leaving the wait blocked for good (seen here: the first timed wait never returned).
 */
export const IMPORTS = { module: 'env', memory: 'memory', wait: 'wait', mark: 'mark' } as const;

/** The `wait` import for a memory. */
export function waitImport(memory: WebAssembly.Memory): (addr: number, expected: number, ms: number) => number {
  const i32 = new Int32Array(memory.buffer, 0, CTRL_BYTES / 4);
  return (addr, expected, ms) => {
    const r = Atomics.wait(i32, addr >> 2, expected, ms);
    return r === 'ok' ? 0 : r === 'not-equal' ? 1 : 2;
  };
}

/** Maximum pages of the shared memory (4 GiB): shared memories must declare a maximum. */
export const MAX_PAGES = 65536;

export const PAGE = 65536;

/** Persistent tensors and arena slices are placed at multiples of this (a cache line). */
export const LINE = 64;
