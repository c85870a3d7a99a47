import { availableParallelism } from 'node:os';
import { loadBinaryen } from '../../codegen/wasm-simd/emitter.ts';
import { layoutState } from '../../codegen/wasm-simd/layout.ts';
import type { WasmStep } from '../../codegen/artifact.ts';
import type { CompileOptions, CompiledProgram } from '../../codegen/wasm-simd/module.ts';
import { stateLayout, wasmStep } from '../../codegen/wasm-simd/step.ts';
import { WASM_TARGET } from '../../codegen/wasm-simd/target.ts';
import type { Graph } from '../../ir/graph.ts';
import type { Program } from '../../ir/program.ts';
import type { Target } from '../../ir/target.ts';
import { compileProgram } from '../../passes/compile.ts';
import { exampleSizeOf, type StepSource } from '../backend.ts';
import { WasmBackend, type WasmRunOptions } from './backend.ts';
import { relaxedSimdSupported } from './features.ts';
import type { StepCache } from './step-cache.ts';
import { optimizingCompiler } from './optimized-module.ts';
import { nodeThreads } from './threads-node.ts';

export interface WasmBackendOptions extends Omit<WasmRunOptions, 'threads' | 'exampleSize'> {
  /** Threads (the main thread and threads-1 workers). Default: the number of cores. */
  threads?: number;
  /** Use relaxed SIMD: true, false, or 'auto' (default: when the runtime supports it). */
  relaxed?: boolean | 'auto';
  /** Graph → Program for this backend's target; default: the best lowering the passes provide. */
  lower?: (g: Graph, target: Target) => Program;
  /** binaryen optimisation (CompileOptions.optimize), for experiments. */
  optimize?: boolean | number | readonly string[];
  /** Tests of the failure paths: make a thread trap or hang (see CompileOptions.fault). */
  fault?: { trap?: number; hang?: number };
  /** Keep built modules between runs; binaryen is then imported only when one must be built (by `prepare`). */
  cache?: StepCache;
}

/** Starts importing binaryen (~0.4 s) now, so that it overlaps other start-up work. */
export function preloadWasmBackend(): void {
  loadBinaryen().catch(() => {
    // reported by createWasmBackend, which awaits the same import
  });
}

/**
 * The wasm backend as kiln runs it: each (train | eval, batch size) step is traced, lowered and
 * built into a module on first use (or read back from the step cache), then run by the
 * compiler-free WasmBackend.
 */
export class CompilingWasmBackend extends WasmBackend {
  readonly relaxed: boolean;
  private readonly cached: (kind: 'train' | 'eval', batch: number) => WasmStep | undefined;
  private readonly build: CompileOptions;

  constructor(
    steps: StepSource,
    batchSize: number,
    seed: number,
    opts: WasmBackendOptions,
    private readonly built = new Map<string, { program: Program; compiled?: CompiledProgram }>(),
  ) {
    const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    const relaxed = opts.relaxed === undefined || opts.relaxed === 'auto' ? relaxedSimdSupported() : opts.relaxed && relaxedSimdSupported();
    const lower = opts.lower ?? compileProgram;
    // The training step holds every persistent tensor (an eval step reads a subset of them).
    const first = steps.train(batchSize);
    const layout = layoutState(first.state);
    const build = { threads, relaxed, layout, fault: opts.fault, profile: opts.profile, optimize: opts.optimize };
    // Experiments (faults, profiling, other binaryen passes) are built every time.
    const cache = opts.fault || opts.profile || opts.optimize !== undefined ? undefined : opts.cache;
    const programs = new Map<string, Program>();
    const program = (kind: 'train' | 'eval', batch: number) => {
      const key = `${kind}/${batch}`;
      let p = programs.get(key);
      if (!p) programs.set(key, (p = lower(steps[kind](batch), WASM_TARGET)));
      return p;
    };
    const hits = new Map<string, WasmStep | undefined>();
    const cached = (kind: 'train' | 'eval', batch: number) => {
      const key = `${kind}/${batch}`;
      if (!cache) return undefined;
      if (!hits.has(key)) hits.set(key, cache.get(cache.key(program(kind, batch), { threads, relaxed, layout })));
      return hits.get(key);
    };
    const load = (kind: 'train' | 'eval', batch: number) => {
      const p = program(kind, batch);
      const hit = cached(kind, batch);
      if (hit) {
        built.set(`${kind}/${batch}`, { program: p });
        return hit;
      }
      const { step, compiled } = wasmStep(p, build);
      cache?.put(cache.key(p, { threads, relaxed, layout }), step);
      built.set(`${kind}/${batch}`, { program: p, compiled });
      return step;
    };
    super(load, stateLayout(layout), seed, { ...opts, threads, exampleSize: exampleSizeOf(first) });
    this.relaxed = relaxed;
    this.cached = cached;
    this.build = build;
  }

  /** Builds (or reads back) a step's module now, importing binaryen first when it must be built. */
  override async prepare(kind: 'train' | 'eval', batch: number): Promise<void> {
    if (!this.cached(kind, batch)) await loadBinaryen();
    super.prepare(kind, batch);
  }

  /** The compiled module of a step, compiling it on first use (for dumps and benchmarks). */
  compiled(kind: 'train' | 'eval', batch: number): { program: Program; compiled: CompiledProgram; compileMs: number } {
    const { loadMs } = this.module(kind, batch);
    const entry = this.built.get(`${kind}/${batch}`)!;
    // Read back from the cache: only the bytes are there, so a dump builds it again.
    const compiled = entry.compiled ?? wasmStep(entry.program, this.build).compiled;
    return { program: entry.program, compiled, compileMs: loadMs };
  }
}

/** Loads binaryen, lays out the shared memory, starts the workers, writes the initial state. */
export async function createWasmBackend(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, opts: WasmBackendOptions = {}): Promise<CompilingWasmBackend> {
  if (!opts.cache) await loadBinaryen();
  const backend = new CompilingWasmBackend(steps, batchSize, seed, { compile: await optimizingCompiler(), ...opts });
  await backend.startWorkers(opts.host ?? (await nodeThreads()));
  for (const [name, data] of initial) backend.setState(name, data);
  return backend;
}
