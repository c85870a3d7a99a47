import { availableParallelism } from 'node:os';
import { loadBinaryen } from '../../codegen/wasm-simd/emitter.ts';
import { layoutState } from '../../codegen/wasm-simd/layout.ts';
import type { CompiledProgram } from '../../codegen/wasm-simd/module.ts';
import { stateLayout, wasmStep } from '../../codegen/wasm-simd/step.ts';
import { WASM_TARGET } from '../../codegen/wasm-simd/target.ts';
import type { Graph } from '../../ir/graph.ts';
import type { Program } from '../../ir/program.ts';
import type { Target } from '../../ir/target.ts';
import { compileProgram } from '../../passes/compile.ts';
import type { StepSource } from '../backend.ts';
import { WasmBackend, type WasmRunOptions } from './backend.ts';
import { relaxedSimdSupported } from './features.ts';
import { optimizingCompiler } from './optimized-module.ts';
import { nodeThreads } from './threads-node.ts';

export interface WasmBackendOptions extends Omit<WasmRunOptions, 'threads'> {
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
}

/** Starts importing binaryen (~0.4 s) now, so that it overlaps other start-up work. */
export function preloadWasmBackend(): void {
  loadBinaryen().catch(() => {
    // reported by createWasmBackend, which awaits the same import
  });
}

/**
 * The wasm backend as kiln runs it: each (train | eval, batch size) step is traced, lowered and
 * built into a module on first use, then run by the compiler-free WasmBackend.
 */
export class CompilingWasmBackend extends WasmBackend {
  readonly relaxed: boolean;

  constructor(
    steps: StepSource,
    batchSize: number,
    seed: number,
    opts: WasmBackendOptions,
    private readonly built = new Map<string, { program: Program; compiled: CompiledProgram }>(),
  ) {
    const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    const relaxed = opts.relaxed === undefined || opts.relaxed === 'auto' ? relaxedSimdSupported() : opts.relaxed && relaxedSimdSupported();
    const lower = opts.lower ?? compileProgram;
    // The training step holds every persistent tensor (an eval step reads a subset of them).
    const layout = layoutState(steps.train(batchSize).state);
    const load = (kind: 'train' | 'eval', batch: number) => {
      const program = lower(steps[kind](batch), WASM_TARGET);
      const { step, compiled } = wasmStep(program, { threads, relaxed, layout, fault: opts.fault, profile: opts.profile, optimize: opts.optimize });
      built.set(`${kind}/${batch}`, { program, compiled });
      return step;
    };
    super(load, stateLayout(layout), seed, { ...opts, threads });
    this.relaxed = relaxed;
  }

  /** The compiled module of a step, compiling it on first use (for dumps and benchmarks). */
  compiled(kind: 'train' | 'eval', batch: number): { program: Program; compiled: CompiledProgram; compileMs: number } {
    const { loadMs } = this.module(kind, batch);
    return { ...this.built.get(`${kind}/${batch}`)!, compileMs: loadMs };
  }
}

/** Loads binaryen, lays out the shared memory, starts the workers, writes the initial state. */
export async function createWasmBackend(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, opts: WasmBackendOptions = {}): Promise<CompilingWasmBackend> {
  await loadBinaryen();
  const backend = new CompilingWasmBackend(steps, batchSize, seed, { compile: await optimizingCompiler(), ...opts });
  await backend.startWorkers(opts.host ?? (await nodeThreads()));
  for (const [name, data] of initial) backend.setState(name, data);
  return backend;
}
