import type { Kernel, Program, Slice } from '../../ir/program.ts';
import { ABORT, CTRL, IMPORTS, LINE, MAX_PAGES } from './abi.ts';
import { binaryenLoaded, Emitter, Fn, roundUp, type Local, type X } from './emitter.ts';
import type { KernelCtx } from './kernel.ts';
import { kernelGen } from './kernels/index.ts';
export { supportedKinds } from './kernels/index.ts';
import { addressOf, type MemoryLayout } from './layout.ts';
import { viewAliases } from './views.ts';

export interface CompileOptions {
  threads: number;
  /** Use f32x4.relaxed_madd (the runtime must support relaxed SIMD). */
  relaxed: boolean;
  layout: MemoryLayout;
  /** Keep the module's text (kernel by kernel) for dumps. */
  text?: boolean;
  /** binaryen optimisation: false (none), a level 1-4, or a list of passes (default: see OPTIMIZE). */
  optimize?: boolean | number | readonly string[];
  /** Call the `mark(kernel)` import on thread 0 after each kernel (and mark(-1) first): per-kernel timing. */
  profile?: boolean;
  /** For tests of the runtime's failure paths: thread `trap` traps, thread `hang` spins forever, at the start of the step. */
  fault?: { trap?: number; hang?: number };
}

export interface CompiledProgram {
  readonly binary: Uint8Array;
  readonly threads: number;
  readonly relaxed: boolean;
  /** Absolute address of a Program slice. */
  readonly addr: (s: Slice) => number;
  /** Bytes of linear memory the module uses: control, state, arena and scratch. */
  readonly memoryBytes: number;
  /** Text form, kernel by kernel, when asked for. */
  readonly text?: string;
  readonly kernels: readonly { name: string; kind: string; phases: string[] }[];
}

/**
 * binaryen's passes, chosen for what V8 does with the result. The kernels are emitted already
 * scheduled (independent accumulator chains interleaved, loads next to their uses, constant
 * offsets in the instructions), and V8's optimizing compiler keeps instruction order on x64. The
 * full -O2/-O3 pipeline sinks every load into its single use, which turns a tile's interleaved
 * chains into one nested expression per accumulator: every operand is then live at once and
 * V8 spills. So only passes that fold constants and clean up without moving code run.
 */
const OPTIMIZE: readonly string[] = ['precompute', 'optimize-instructions', 'remove-unused-brs', 'vacuum', 'merge-blocks', 'coalesce-locals', 'reorder-locals', 'remove-unused-names', 'vacuum'];

/** Spins on the barrier word this many times before sleeping on it (a few µs). */
const SPINS = 20000;
/** A sleeping barrier wakes this often (ms) to look for an abort and count towards the timeout. */
const WAIT_MS = 1;

/**
 * Compiles a Program into one wasm module (SIMD128, shared memory, optimized and validated by
 * binaryen). Exports `step(tid) -> status`: every thread calls it once per step; it runs each
 * kernel's share for `tid`, with a barrier after every kernel phase; 0 means done, 1 means some
 * thread aborted (see CTRL.ABORT).
 */
export function buildModule(program: Program, opts: CompileOptions): CompiledProgram {
  const lib = binaryenLoaded();
  const T = opts.threads;
  const e = new Emitter(lib, { relaxed: opts.relaxed, threads: T });
  const { m, b } = e;
  try {
    let features = b.Features.SIMD128 | b.Features.Atomics | b.Features.BulkMemory | b.Features.BulkMemoryOpt | b.Features.MutableGlobals | b.Features.SignExt | b.Features.NontrappingFPToInt;
    if (opts.relaxed) features |= b.Features.RelaxedSIMD;
    m.setFeatures(features);
    // The runtime's memory is at least memoryBytes (it grows it before instantiating): declare 1
    // page. One thread needs no shared memory, which a page that is not cross-origin isolated
    // cannot create: its modules import a plain one (and use no atomics).
    m.setMemory(1, MAX_PAGES, null, [], T > 1, false, 'mem');
    m.addMemoryImport('mem', IMPORTS.module, IMPORTS.memory, T > 1);

    const baseAddr = addressOf(program, opts.layout);
    const alias = viewAliases(program);
    const addr = (s: Slice) => baseAddr(alias(s));
    const arenaEnd = opts.layout.arenaBase + roundUp(program.memory.arenaBytes, LINE) + LINE;
    let sharedMax = 0;
    let threadMax = 0;
    /** Work counters of dynamically scheduled loops, one cache line each, zeroed at the start of a step. */
    let counters = 0;
    const sharedBase = arenaEnd;

    m.addFunctionImport('wait', IMPORTS.module, IMPORTS.wait, b.createType([b.i32, b.i32, b.i32]), b.i32);
    if (opts.profile) m.addFunctionImport('mark', IMPORTS.module, IMPORTS.mark, b.i32, b.none);

    const kernels: { name: string; kind: string; phases: string[] }[] = [];
    const used = new Set<string>();
    for (const k of program.kernels) {
      const gen = kernelGen(k);
      if (!gen) throw new Error(`wasm backend: no kernel for kind '${k.kind}' (kernel ${k.name})`);
      const base = sanitize(k.name);
      let name = base;
      for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
      used.add(name);
      const phases: string[] = [];
      // Scratch is allocated afresh for each kernel (its phases and sub-kernels get disjoint
      // pieces); the regions are as large as the largest kernel's need.
      let shared = 0;
      let perThread = 0;
      const ctx: KernelCtx = {
        e,
        k,
        T,
        inAddr: (i) => addr(k.inputs[i]!),
        outAddr: (i) => addr(k.outputs[i]!),
        inShape: (i) => k.inputs[i]!.shape,
        outShape: (i) => k.outputs[i]!.shape,
        phase(body) {
          const fn = new Fn(e, [b.i32]);
          const stmts = body(fn, fn.params[0]!);
          const fname = phases.length === 0 ? name : `${name}$${phases.length}`;
          m.addFunction(fname, b.i32, b.none, fn.vars, e.block(stmts.length ? stmts : [e.nop()]));
          phases.push(fname);
        },
        threadScratch(bytes: number, tid: Local): X {
          const at = perThread;
          perThread += roundUp(bytes, LINE) + LINE;
          threadMax = Math.max(threadMax, perThread);
          return m.i32.add(m.global.get('tscratch', b.i32), m.i32.add(m.i32.mul(tid.get(), m.global.get('tstride', b.i32)), m.i32.const(at)));
        },
        counter(): X {
          return m.i32.add(m.global.get('counters', b.i32), m.i32.const(LINE * counters++));
        },
        sharedScratch(bytes: number): number {
          const at = shared;
          shared += roundUp(bytes, LINE) + LINE;
          sharedMax = Math.max(sharedMax, shared);
          return sharedBase + at;
        },
      };
      gen(ctx);
      kernels.push({ name, kind: k.kind, phases });
    }

    const tscratch = sharedBase + roundUp(sharedMax, LINE);
    // Each piece of scratch has a line of slack after it: vector over-reads stay inside.
    const tstride = roundUp(threadMax, LINE);
    const counterBase = tscratch + T * tstride;
    const memoryBytes = counterBase + LINE * counters;
    m.addGlobal('tscratch', b.i32, false, m.i32.const(tscratch));
    m.addGlobal('counters', b.i32, false, m.i32.const(counterBase));
    m.addGlobal('tstride', b.i32, false, m.i32.const(tstride));

    if (T > 1) addBarrier(e);
    const tid = new Fn(e, [b.i32]).params[0]!;
    const calls: X[] = [];
    if (opts.fault?.trap !== undefined) calls.push(m.if(m.i32.eq(tid.get(), m.i32.const(opts.fault.trap)), m.unreachable()));
    if (opts.fault?.hang !== undefined) calls.push(m.if(m.i32.eq(tid.get(), m.i32.const(opts.fault.hang)), m.loop('hang', m.br('hang'))));
    if (T > 1 && counters > 0) {
      // Thread 0 zeroes the work counters; the barrier publishes them before any kernel runs.
      calls.push(m.if(m.i32.eqz(tid.get()), m.memory.fill(m.i32.const(counterBase), m.i32.const(0), m.i32.const(LINE * counters))));
      calls.push(m.if(m.call('barrier', [], b.i32), m.return(m.i32.const(1))));
    }
    const mark = (i: number) => m.if(m.i32.eqz(tid.get()), m.call('mark', [m.i32.const(i)], b.none));
    if (opts.profile) calls.push(mark(-1));
    kernels.forEach((k, i) => {
      for (const p of k.phases) {
        calls.push(m.call(p, [tid.get()], b.none));
        if (T > 1) calls.push(m.if(m.call('barrier', [], b.i32), m.return(m.i32.const(1))));
      }
      if (opts.profile) calls.push(mark(i));
    });
    calls.push(m.return(m.i32.const(0)));
    m.addFunction('step', b.i32, b.i32, [], m.block(null, calls, b.i32));
    m.addFunctionExport('step', 'step');

    if (!m.validate()) throw new Error(`wasm backend: binaryen rejected the module built for ${program.stage} batch ${program.batchSize}`);
    const how = opts.optimize ?? OPTIMIZE;
    if (how !== false) {
      lib.setOptimizeLevel(typeof how === 'number' ? how : 2);
      lib.setShrinkLevel(0);
      // Kernels stay functions of their own: the dump reads kernel by kernel, and V8 compiles
      // (and register-allocates) each one separately instead of one huge step.
      lib.setOneCallerInlineMaxSize(0);
      lib.setFlexibleInlineMaxSize(0);
      lib.setAlwaysInlineMaxSize(0);
      if (Array.isArray(how)) m.runPasses(how);
      else m.optimize();
    }
    const binary = m.emitBinary();
    const text = opts.text ? annotate(m.emitText(), program, kernels, addr, { tscratch, tstride, sharedBase, memoryBytes }) : undefined;
    return { binary, threads: T, relaxed: opts.relaxed, addr, memoryBytes, text, kernels };
  } finally {
    m.dispose();
  }
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_');
}

/**
 * Central barrier with a generation counter (the last thread to arrive resets the count and bumps
 * the generation). Waiters spin briefly, then sleep on the generation word in 1 ms slices, and
 * give up when CTRL.ABORT is set or after CTRL.TIMEOUT_MS slices (setting ABORT.TIMEOUT), so a
 * trapped or hung thread can never block the others for good. Returns 0, or 1 when aborted.
 */
function addBarrier(e: Emitter): void {
  const { m, b } = e;
  const fn = new Fn(e, []);
  const gen = fn.i32();
  const spins = fn.i32();
  const waited = fn.i32();
  const c = (n: number) => m.i32.const(n);
  const load = (a: number) => m.i32.atomic.load(0, c(a));
  const top = 'sleep';
  const body = m.block(null, [
    gen.set(load(CTRL.BAR_GEN)),
    m.if(
      m.i32.eq(m.i32.atomic.rmw.add(0, c(CTRL.BAR_COUNT), c(1)), c(e.T - 1)),
      m.block(null, [
        m.i32.atomic.store(0, c(CTRL.BAR_COUNT), c(0)),
        m.i32.atomic.store(0, c(CTRL.BAR_GEN), m.i32.add(gen.get(), c(1))),
        m.if(m.i32.ne(load(CTRL.SLEEPERS), c(0)), m.drop(m.memory.atomic.notify(c(CTRL.BAR_GEN), c(e.T)))),
        m.return(c(0)),
      ]),
    ),
    m.loop(
      top,
      m.block(null, [
        m.if(m.i32.ne(load(CTRL.BAR_GEN), gen.get()), m.return(c(0))),
        m.if(m.i32.ne(load(CTRL.ABORT), c(ABORT.NONE)), m.return(c(1))),
        spins.set(m.i32.add(spins.get(), c(1))),
        m.br(top, m.i32.lt_u(spins.get(), c(SPINS))),
        m.drop(m.i32.atomic.rmw.add(0, c(CTRL.SLEEPERS), c(1))),
        m.drop(m.call('wait', [c(CTRL.BAR_GEN), gen.get(), c(WAIT_MS)], b.i32)),
        m.drop(m.i32.atomic.rmw.sub(0, c(CTRL.SLEEPERS), c(1))),
        waited.set(m.i32.add(waited.get(), c(1))),
        m.br(top, m.i32.le_u(waited.get(), load(CTRL.TIMEOUT_MS))),
        m.drop(m.i32.atomic.rmw.cmpxchg(0, c(CTRL.ABORT), c(ABORT.NONE), c(ABORT.TIMEOUT))),
        m.drop(m.memory.atomic.notify(c(CTRL.BAR_GEN), c(e.T))),
        m.return(c(1)),
      ]),
    ),
  ], b.i32);
  m.addFunction('barrier', b.none, b.i32, fn.vars, body);
}

/** The module text with a header and a comment before each kernel's functions. */
function annotate(
  text: string,
  program: Program,
  kernels: readonly { name: string; kind: string; phases: string[] }[],
  addr: (s: Slice) => number,
  mem: { tscratch: number; tstride: number; sharedBase: number; memoryBytes: number },
): string {
  // Cut the printed module into top-level items, keeping each function's text by name.
  const lines = text.split('\n');
  const funcs = new Map<string, string[]>();
  const rest: string[] = [];
  let cur: string[] | undefined;
  for (const line of lines) {
    const f = /^ \(func \$([^\s()]+)/.exec(line);
    if (f) {
      cur = [];
      funcs.set(f[1]!, cur);
    } else if (/^ \(/.test(line) || line === ')') {
      cur = undefined;
    }
    (cur ?? rest).push(line);
  }
  const fmt = (s: Slice) => `[${s.shape.join(',')}] @${addr(s)}`;
  const out: string[] = [
    `;; kiln wasm module: ${program.stage} step, batch ${program.batchSize}, ${program.kernels.length} kernels`,
    `;; memory: arena ${program.memory.arenaBytes} bytes, shared scratch @${mem.sharedBase}, thread scratch @${mem.tscratch} stride ${mem.tstride}, ${mem.memoryBytes} bytes in all`,
    ...rest.filter((l) => l !== ')'),
  ];
  const shown = new Set<string>();
  kernels.forEach((k, i) => {
    const kernel: Kernel = program.kernels[i]!;
    out.push('', ` ;; ---- kernel ${k.name}: ${k.kind}${kernel.ops.length > 1 ? ` (${kernel.ops.join(' + ')})` : ''}`);
    out.push(` ;;   in:  ${kernel.inputs.map(fmt).join('  ') || '-'}`);
    out.push(` ;;   out: ${kernel.outputs.map(fmt).join('  ')}`);
    for (const p of k.phases) {
      shown.add(p);
      out.push(...(funcs.get(p) ?? [` ;; (${p} was inlined into step by the optimizer)`]));
    }
  });
  out.push('', ' ;; ---- runtime');
  for (const [name, body] of funcs) if (!shown.has(name)) out.push(...body);
  out.push(')');
  return out.join('\n') + '\n';
}
