import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { KilnError } from '../../ir/errors.ts';
import { ABORT, CMD, CTRL, CTRL_BYTES, IMPORTS, MAX_PAGES, PAGE, waitImport } from '../../codegen/wasm-simd/abi.ts';
import { loadBinaryen } from '../../codegen/wasm-simd/emitter.ts';
import { layoutState, type MemoryLayout } from '../../codegen/wasm-simd/layout.ts';
import { buildModule, type CompiledProgram } from '../../codegen/wasm-simd/module.ts';
import type { Graph } from '../../ir/graph.ts';
import type { Program } from '../../ir/program.ts';
import { numel } from '../../ir/shape.ts';
import { compileProgram } from '../../passes/compile.ts';
import type { Backend, StepResult, StepSource } from '../backend.ts';
import { relaxedSimdSupported } from './features.ts';
import { WORKER_SOURCE } from './worker-source.ts';

export interface WasmBackendOptions {
  /** Threads (the main thread and threads-1 workers). Default: the number of cores. */
  threads?: number;
  /** Use relaxed SIMD: true, false, or 'auto' (default: when the runtime supports it). */
  relaxed?: boolean | 'auto';
  /** A barrier gives up (and the step fails) after waiting this long for another thread. Default 10 s. */
  barrierTimeoutMs?: number;
  /** Graph → Program; default: the best lowering the passes provide. */
  lower?: (g: Graph) => Program;
  /** How long an idle worker spins before sleeping, in ms. Default 2. */
  spinMs?: number;
  /** binaryen optimisation (CompileOptions.optimize), for experiments. */
  optimize?: boolean | number | readonly string[];
  /** Time every kernel (see `profile()`); costs a host call per kernel. */
  profile?: boolean;
  /** Tests of the failure paths: make a thread trap or hang (see CompileOptions.fault). */
  fault?: { trap?: number; hang?: number };
}

interface Loaded {
  id: number;
  program: Program;
  compiled: CompiledProgram;
  instance: WebAssembly.Instance;
  compileMs: number;
}

interface WorkerHandle {
  worker: Worker;
  port: MessagePort;
}

/** Starts importing binaryen (~0.4 s) now, so that it overlaps other start-up work. */
export function preloadWasmBackend(): void {
  loadBinaryen().catch(() => {
    // reported by createWasmBackend, which awaits the same import
  });
}

/** The default Graph → Program lowering: the full pipeline (simplify, fuse, schedule, plan memory). */
export function lowerForWasm(g: Graph): Program {
  return compileProgram(g);
}

/**
 * Creates the wasm backend: loads binaryen, lays out the shared memory, starts the workers.
 * Modules are compiled on first use, one per (train | eval, batch size).
 */
export async function createWasmBackend(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  await loadBinaryen();
  const backend = new WasmBackend(steps, batchSize, seed, opts);
  await backend.start();
  for (const [name, data] of initial) backend.setState(name, data);
  return backend;
}

/**
 * Runs each step as one call into a wasm module built from the step's Program (see
 * src/codegen/wasm-simd). All modules share one WebAssembly.Memory: persistent tensors live at
 * fixed addresses every module reads and writes in place, so switching between the train and
 * eval modules copies nothing, and getState/setState are plain reads and writes of that memory.
 * With threads > 1, workers share the memory and run their share of every kernel, meeting the
 * main thread at a barrier after each one (inside wasm; JavaScript is not called per kernel).
 */
export class WasmBackend implements Backend {
  readonly name = 'wasm';
  /** JavaScript calls the module's `step` once; the kernels run inside it, parted by barriers. */
  readonly dispatchesPerStep = 1;
  readonly stateShapes: ReadonlyMap<string, readonly number[]>;
  readonly threads: number;
  readonly relaxed: boolean;
  readonly layout: MemoryLayout;
  private readonly memory: WebAssembly.Memory;
  private readonly ctrl: Int32Array;
  private readonly modules = new Map<string, Loaded>();
  private readonly workers: WorkerHandle[] = [];
  private readonly lower: (g: Graph) => Program;
  private readonly spinMs: number;
  private readonly fault: WasmBackendOptions['fault'];
  private readonly profiling: boolean;
  private readonly optimize: WasmBackendOptions['optimize'];
  /** Per module key: total ms per kernel over the steps run, and the step count. */
  private readonly times = new Map<string, { ms: number[]; steps: number }>();
  private markAt = 0;
  private marks: number[] | undefined;
  private active: Loaded | undefined;
  private failed: Error | undefined;
  private disposed = false;

  constructor(
    private readonly steps: StepSource,
    batchSize: number,
    seed: number,
    opts: WasmBackendOptions,
  ) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    this.relaxed = opts.relaxed === undefined || opts.relaxed === 'auto' ? relaxedSimdSupported() : opts.relaxed && relaxedSimdSupported();
    this.lower = opts.lower ?? lowerForWasm;
    this.spinMs = opts.spinMs ?? 2;
    this.fault = opts.fault;
    this.profiling = opts.profile === true;
    this.optimize = opts.optimize;
    const train = steps.train(batchSize);
    this.stateShapes = new Map(train.state.map((s) => [s.name, s.shape]));
    // The training step holds every persistent tensor (an eval step reads a subset of them).
    this.layout = layoutState(train.state);
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(this.layout.arenaBase / PAGE) + 1, maximum: MAX_PAGES, shared: true });
    this.ctrl = new Int32Array(this.memory.buffer, 0, CTRL_BYTES / 4);
    Atomics.store(this.ctrl, CTRL.SEED / 4, seed | 0);
    Atomics.store(this.ctrl, CTRL.TIMEOUT_MS / 4, Math.max(1, Math.floor(opts.barrierTimeoutMs ?? 10_000)));
  }

  /** Starts the workers and waits until each is ready. */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let tid = 1; tid < this.threads; tid++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { memory: this.memory, tid, port: port2, spinMs: this.spinMs }, transferList: [port2] });
      worker.unref();
      port1.unref();
      this.workers.push({ worker, port: port1 });
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`wasm worker ${tid} exited (code ${code}) before it started`)));
        }),
      );
      worker.on('error', (e) => (this.failed ??= new Error(`wasm worker ${tid} failed: ${e.message}`)));
    }
    await Promise.all(ready);
    for (const { worker } of this.workers) worker.removeAllListeners('exit');
  }

  setState(name: string, data: Float32Array): void {
    const at = this.layout.state.get(name);
    const shape = this.stateShapes.get(name) ?? at?.shape;
    if (!at || !shape) throw new Error(`no persistent tensor named ${name}`);
    if (data.length !== numel(shape)) throw new Error(`${name}: expected ${numel(shape)} values, got ${data.length}`);
    this.f32(at.addr, data.length).set(data);
  }

  getState(name: string): Float32Array {
    const at = this.layout.state.get(name);
    if (!at) throw new Error(`no persistent tensor named ${name}`);
    return this.f32(at.addr, numel(at.shape)).slice();
  }

  trainStep(x: Float32Array, labels: Float32Array, step: number): StepResult {
    return this.run(this.module('train', labels.length), x, labels, step);
  }

  evalStep(x: Float32Array, labels: Float32Array): StepResult {
    return this.run(this.module('eval', labels.length), x, labels, 0);
  }

  prepare(kind: 'train' | 'eval', batch: number): void {
    this.module(kind, batch);
  }

  /** The compiled module of a step, compiling it on first use (for dumps and benchmarks). */
  compiled(kind: 'train' | 'eval', batch: number): { program: Program; compiled: CompiledProgram; compileMs: number } {
    return this.module(kind, batch);
  }

  /** With `profile`: mean ms per step of each kernel of a step. */
  profile(kind: 'train' | 'eval', batch: number): { kernel: string; kind: string; ms: number }[] {
    const mod = this.modules.get(`${kind}/${batch}`);
    const t = this.times.get(`${kind}/${batch}`);
    if (!mod || !t) return [];
    return mod.program.kernels.map((k, i) => ({ kernel: k.name, kind: k.kind, ms: (t.ms[i] ?? 0) / t.steps }));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length) {
      Atomics.store(this.ctrl, CTRL.CMD / 4, CMD.STOP);
      Atomics.add(this.ctrl, CTRL.BELL / 4, 1);
      Atomics.notify(this.ctrl, CTRL.BELL / 4);
      for (const { worker, port } of this.workers) {
        port.close();
        void worker.terminate();
      }
    }
    this.modules.clear();
    this.active = undefined;
  }

  private f32(addr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, addr, n);
  }

  private check(): void {
    if (this.disposed) throw new Error('the wasm backend was disposed');
    if (this.failed) throw new Error(`the wasm backend stopped after an earlier failure: ${this.failed.message}`);
  }

  private module(kind: 'train' | 'eval', batch: number): Loaded {
    this.check();
    const key = `${kind}/${batch}`;
    let mod = this.modules.get(key);
    if (mod) return mod;
    const t0 = performance.now();
    const program = this.lower(this.steps[kind](batch));
    const compiled = buildModule(program, { threads: this.threads, relaxed: this.relaxed, layout: this.layout, fault: this.fault, profile: this.profiling, optimize: this.optimize });
    const module = new WebAssembly.Module(compiled.binary as Uint8Array<ArrayBuffer>);
    const pages = Math.ceil(compiled.memoryBytes / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (pages > have) {
      const need = `the ${kind} step at batch ${batch} needs ${(compiled.memoryBytes / 2 ** 30).toFixed(2)} GiB of wasm memory`;
      const hint = 'use a smaller --batch-size';
      if (pages > MAX_PAGES) throw new KilnError('resources', `${need}; WebAssembly memory is at most 4 GiB`, undefined, hint);
      try {
        this.memory.grow(pages - have);
      } catch (e) {
        throw new KilnError('resources', `${need}, and growing it failed: ${(e as Error).message}`, undefined, hint);
      }
    }
    const instance = new WebAssembly.Instance(module, this.imports());
    const id = this.modules.size + 1;
    if (this.workers.length) this.loadOnWorkers(id, module);
    mod = { id, program, compiled, instance, compileMs: performance.now() - t0 };
    this.modules.set(key, mod);
    return mod;
  }

  private imports(): WebAssembly.Imports {
    const mark = (k: number) => {
      const now = performance.now();
      if (k >= 0 && this.marks) this.marks[k] = (this.marks[k] ?? 0) + now - this.markAt;
      this.markAt = now;
    };
    return { [IMPORTS.module]: { [IMPORTS.memory]: this.memory, [IMPORTS.exp]: Math.exp, [IMPORTS.log]: Math.log, [IMPORTS.wait]: waitImport(this.memory), [IMPORTS.mark]: mark } };
  }

  private ring(cmd: number): void {
    Atomics.store(this.ctrl, CTRL.CMD / 4, cmd);
    Atomics.add(this.ctrl, CTRL.BELL / 4, 1);
    Atomics.notify(this.ctrl, CTRL.BELL / 4);
  }

  private loadOnWorkers(id: number, module: WebAssembly.Module): void {
    const ack0 = Atomics.load(this.ctrl, CTRL.ACK / 4);
    for (const { port } of this.workers) port.postMessage({ id, module });
    this.ring(CMD.LOAD);
    const want = ack0 + this.workers.length;
    const deadline = performance.now() + 30_000;
    for (;;) {
      const ack = Atomics.load(this.ctrl, CTRL.ACK / 4);
      if (ack >= want) return;
      if (Atomics.load(this.ctrl, CTRL.ABORT / 4) !== ABORT.NONE) this.fail(this.workerError());
      if (performance.now() > deadline) this.fail(new Error('wasm workers did not load the module within 30 s'));
      Atomics.wait(this.ctrl, CTRL.ACK / 4, ack, 50);
    }
  }

  private run(mod: Loaded, x: Float32Array, labels: Float32Array, step: number): StepResult {
    this.check();
    const p = mod.program;
    const { addr } = mod.compiled;
    const inX = p.inputs.x;
    const inLabels = p.inputs.labels;
    if (!inX || !inLabels) throw new Error(`${p.stage} program has no x or labels input`);
    if (x.length !== numel(inX.shape)) throw new Error(`x: expected ${numel(inX.shape)} values, got ${x.length}`);
    const logitsSlice = p.outputs.logits!;
    const classes = logitsSlice.shape[1]!;
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (!Number.isInteger(l) || l < 0 || l >= classes) throw new Error(`cross_entropy: label ${l} of sample ${i} is not a class index in [0, ${classes})`);
    }
    if (this.active !== mod) {
      // Other modules' arenas overlap this one's: its constants may have been overwritten.
      for (const c of p.constants) this.f32(addr(c.slice), 1)[0] = c.value;
      this.active = mod;
    }
    this.f32(addr(inX), x.length).set(x);
    this.f32(addr(inLabels), labels.length).set(labels);
    if (p.inputs.step) {
      if (!Number.isInteger(step) || step < 0 || step >= 2 ** 24) throw new Error(`step must be an integer in [0, 2^24), got ${step}`);
      this.f32(addr(p.inputs.step), 1)[0] = step;
    }

    if (this.profiling) {
      const key = `${p.stage}/${p.batchSize}`;
      let t = this.times.get(key);
      if (!t) this.times.set(key, (t = { ms: [], steps: 0 }));
      this.marks = t.ms;
      t.steps++;
    }
    if (this.workers.length) {
      Atomics.store(this.ctrl, CTRL.MODULE / 4, mod.id);
      this.ring(CMD.RUN);
    }
    let status: number;
    try {
      status = (mod.instance.exports.step as (tid: number) => number)(0);
    } catch (e) {
      // A trap on this thread: release the workers from their barriers, then report it.
      Atomics.compareExchange(this.ctrl, CTRL.ABORT / 4, ABORT.NONE, ABORT.TRAP);
      Atomics.notify(this.ctrl, CTRL.BAR_GEN / 4);
      this.fail(new Error(`wasm ${p.stage} step trapped: ${(e as Error).message}`));
    }
    if (status !== 0) this.fail(this.workerError());
    const loss = this.f32(addr(p.outputs.loss!), 1)[0]!;
    const logits = this.f32(addr(logitsSlice), numel(logitsSlice.shape)).slice();
    return { loss, logits };
  }

  /** What went wrong on the other threads: the first error a worker posted, or the abort code. */
  private workerError(): Error {
    const code = Atomics.load(this.ctrl, CTRL.ABORT / 4);
    // A worker posts its error before it sets ABORT; give the message a moment to arrive.
    const deadline = performance.now() + 1000;
    do {
      for (const { port } of this.workers) {
        const m = receiveMessageOnPort(port)?.message as { type?: string; tid?: number; message?: string } | undefined;
        if (m?.type === 'error') return new Error(`wasm worker ${m.tid} trapped: ${m.message}`);
      }
      if (code !== ABORT.TRAP) break;
      Atomics.wait(this.ctrl, CTRL.NAP / 4, 0, 5);
    } while (performance.now() < deadline);
    if (code === ABORT.TIMEOUT) return new Error(`a wasm thread did not reach a barrier within ${Atomics.load(this.ctrl, CTRL.TIMEOUT_MS / 4)} ms`);
    return new Error(`the wasm step was aborted (code ${code})`);
  }

  private fail(e: Error): never {
    this.failed = e;
    throw e;
  }
}
