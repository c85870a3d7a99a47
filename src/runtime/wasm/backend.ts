import { ABORT, CMD, CTRL, CTRL_BYTES, IMPORTS, MAX_PAGES, PAGE, waitImport } from '../../codegen/wasm-simd/abi.ts';
import type { WasmStateLayout, WasmStep, WasmTensor } from '../../codegen/artifact.ts';
import { KilnError } from '../../ir/errors.ts';
import { tooLargeForWasm } from './memory-limit.ts';
import { batchOf, scalarFeeds, type Backend, type StepResult, type StepScalars } from '../backend.ts';
import type { WasmThreads, WasmWorker } from './threads.ts';

export interface WasmRunOptions {
  /** Threads (the calling thread and threads-1 workers); every module loaded must be built for this many. */
  threads: number;
  /** Starts the workers; needed when threads > 1. */
  host?: WasmThreads;
  /** A barrier gives up (and the step fails) after waiting this long for another thread. Default 10 s. */
  barrierTimeoutMs?: number;
  /** How long an idle worker spins before sleeping, in ms. Default 2. */
  spinMs?: number;
  /** Time every kernel (see `profile()`); the modules must be built with `profile`. */
  profile?: boolean;
  /** Compiles a step's module (default `new WebAssembly.Module`); Node passes optimized-module.ts's. */
  compile?: (bytes: Uint8Array) => WebAssembly.Module;
  /** Values of x per example (the model's input shape): a step's batch is x's length over this. */
  exampleSize: number;
}

/** A step's module, built or read from a bundle on first use (kind, batch size). */
export type WasmStepLoader = (kind: 'train' | 'eval', batch: number) => WasmStep;

export interface LoadedStep {
  id: number;
  step: WasmStep;
  instance: WebAssembly.Instance;
  loadMs: number;
}

/**
 * Runs each step as one call into its WebAssembly module (src/codegen/wasm-simd). All modules
 * share one WebAssembly.Memory: persistent tensors live at fixed addresses every module reads and
 * writes in place, so switching between the train and eval modules copies nothing, and
 * getState/setState are plain reads and writes of that memory. With threads > 1, workers share
 * the memory and run their share of every kernel, meeting the calling thread at a barrier after
 * each one (inside wasm; JavaScript is not called per kernel). The calling thread blocks in
 * Atomics.wait, so in a page this runs in a worker.
 *
 * This class never compiles: its modules come from `load` (built by kiln on demand, or read
 * from a standalone bundle), so it is what kiln-runtime.mjs carries.
 */
export class WasmBackend implements Backend {
  readonly name = 'wasm';
  /** JavaScript calls the module's `step` once; the kernels run inside it, parted by barriers. */
  readonly dispatchesPerStep = 1;
  readonly stateShapes: ReadonlyMap<string, readonly number[]>;
  readonly threads: number;
  private readonly exampleSize: number;
  private readonly state: ReadonlyMap<string, { addr: number; count: number }>;
  private readonly memory: WebAssembly.Memory;
  private ctrl: Int32Array;
  private readonly modules = new Map<string, LoadedStep>();
  private readonly workers: WasmWorker[] = [];
  private readonly spinMs: number;
  private readonly profiling: boolean;
  private readonly compile: (bytes: Uint8Array) => WebAssembly.Module;
  /** Per module key: total ms per kernel over the steps run, and the step count. */
  private readonly times = new Map<string, { ms: number[]; steps: number }>();
  private markAt = 0;
  private marks: number[] | undefined;
  private active: LoadedStep | undefined;
  private failed: Error | undefined;
  private disposed = false;

  /** Lays out the memory and starts the workers; then every persistent tensor is zero until setState. */
  static async start(load: WasmStepLoader, layout: WasmStateLayout, seed: number, opts: WasmRunOptions): Promise<WasmBackend> {
    const b = new WasmBackend(load, layout, seed, opts);
    await b.startWorkers(opts.host);
    return b;
  }

  protected constructor(
    private readonly load: WasmStepLoader,
    private readonly layout: WasmStateLayout,
    seed: number,
    opts: WasmRunOptions,
  ) {
    this.threads = Math.max(1, Math.floor(opts.threads));
    this.exampleSize = opts.exampleSize;
    this.spinMs = opts.spinMs ?? 2;
    this.profiling = opts.profile === true;
    this.compile = opts.compile ?? ((bytes) => new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>));
    this.stateShapes = new Map(layout.state.map((s) => [s.name, s.shape]));
    this.state = new Map(layout.state.map((s) => [s.name, { addr: s.addr, count: s.shape.reduce((a, b) => a * b, 1) }]));
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(layout.arenaBase / PAGE) + 1, maximum: MAX_PAGES, shared: this.threads > 1 });
    this.ctrl = new Int32Array(this.memory.buffer, 0, CTRL_BYTES / 4);
    Atomics.store(this.ctrl, CTRL.SEED / 4, seed | 0);
    Atomics.store(this.ctrl, CTRL.TIMEOUT_MS / 4, Math.max(1, Math.floor(opts.barrierTimeoutMs ?? 10_000)));
  }

  /** Starts the threads-1 workers (once: `start` does it, or a subclass's factory). */
  async startWorkers(host: WasmThreads | undefined): Promise<void> {
    if (this.threads === 1) return;
    if (this.workers.length) throw new Error('the wasm backend\'s workers are already started');
    if (!host) throw new Error(`the wasm backend needs a thread host for ${this.threads} threads`);
    const started = await Promise.allSettled(Array.from({ length: this.threads - 1 }, (_, i) => host.spawn(i + 1, this.memory, this.spinMs, (m) => (this.failed ??= new Error(m)))));
    for (const s of started) if (s.status === 'fulfilled') this.workers.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      this.dispose();
      throw (failed as PromiseRejectedResult).reason;
    }
  }

  setState(name: string, data: Float32Array): void {
    const at = this.state.get(name);
    if (!at) throw new Error(`no persistent tensor named ${name}`);
    if (data.length !== at.count) throw new Error(`${name}: expected ${at.count} values, got ${data.length}`);
    this.f32(at.addr, data.length).set(data);
  }

  getState(name: string): Float32Array {
    const at = this.state.get(name);
    if (!at) throw new Error(`no persistent tensor named ${name}`);
    return this.f32(at.addr, at.count).slice();
  }

  trainStep(x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): StepResult {
    return this.run(this.module('train', batchOf(x, this.exampleSize)), x, labels, step, scalars);
  }

  evalStep(x: Float32Array, labels: Float32Array): StepResult {
    return this.run(this.module('eval', batchOf(x, this.exampleSize)), x, labels, 0);
  }

  prepare(kind: 'train' | 'eval', batch: number): void {
    this.module(kind, batch);
  }

  /** With `profile`: mean ms per step of each kernel of a step. */
  profile(kind: 'train' | 'eval', batch: number): { kernel: string; kind: string; ms: number }[] {
    const mod = this.modules.get(`${kind}/${batch}`);
    const t = this.times.get(`${kind}/${batch}`);
    if (!mod || !t) return [];
    return mod.step.kernels.map((k, i) => ({ kernel: k.name, kind: k.kind, ms: (t.ms[i] ?? 0) / t.steps }));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length) {
      Atomics.store(this.ctrl, CTRL.CMD / 4, CMD.STOP);
      Atomics.add(this.ctrl, CTRL.BELL / 4, 1);
      Atomics.notify(this.ctrl, CTRL.BELL / 4);
      for (const w of this.workers) w.terminate();
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

  /** The loaded module of a step, loading it on first use; `loadMs` includes building it when `load` builds. */
  protected module(kind: 'train' | 'eval', batch: number): LoadedStep {
    this.check();
    const key = `${kind}/${batch}`;
    let mod = this.modules.get(key);
    if (mod) return mod;
    const t0 = performance.now();
    const step = this.load(kind, batch);
    if (step.threads !== this.threads) throw new Error(`the ${key} module is built for ${step.threads} threads; this backend runs ${this.threads}`);
    const module = this.compile(step.binary);
    const pages = Math.ceil(step.memoryBytes / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (pages > have) {
      if (pages > MAX_PAGES) throw tooLargeForWasm(`the ${kind} step at batch ${batch}`, batch, step.memoryBytes, this.layout.arenaBase, ' of wasm memory');
      try {
        this.memory.grow(pages - have);
      } catch (e) {
        throw new KilnError('resources', `the ${kind} step at batch ${batch} needs ${(step.memoryBytes / 2 ** 30).toFixed(2)} GiB of wasm memory, and growing it failed: ${(e as Error).message}`, undefined, 'use a smaller --batch-size, or free memory on this machine');
      }
      // Growing a memory that is not shared (one thread) replaces its buffer.
      this.ctrl = new Int32Array(this.memory.buffer, 0, CTRL_BYTES / 4);
    }
    const instance = new WebAssembly.Instance(module, this.imports());
    const id = this.modules.size + 1;
    if (this.workers.length) this.loadOnWorkers(id, module);
    mod = { id, step, instance, loadMs: performance.now() - t0 };
    this.modules.set(key, mod);
    return mod;
  }

  private imports(): WebAssembly.Imports {
    const mark = (k: number) => {
      const now = performance.now();
      if (k >= 0 && this.marks) this.marks[k] = (this.marks[k] ?? 0) + now - this.markAt;
      this.markAt = now;
    };
    return { [IMPORTS.module]: { [IMPORTS.memory]: this.memory, [IMPORTS.wait]: waitImport(this.memory), [IMPORTS.mark]: mark } };
  }

  private ring(cmd: number): void {
    Atomics.store(this.ctrl, CTRL.CMD / 4, cmd);
    Atomics.add(this.ctrl, CTRL.BELL / 4, 1);
    Atomics.notify(this.ctrl, CTRL.BELL / 4);
  }

  private loadOnWorkers(id: number, module: WebAssembly.Module): void {
    const ack0 = Atomics.load(this.ctrl, CTRL.ACK / 4);
    for (const w of this.workers) w.send(id, module);
    this.ring(CMD.LOAD);
    const want = ack0 + this.workers.length;
    const deadline = performance.now() + 30_000;
    for (;;) {
      const ack = Atomics.load(this.ctrl, CTRL.ACK / 4);
      if (ack >= want) return;
      if (Atomics.load(this.ctrl, CTRL.ABORT / 4) !== ABORT.NONE) this.fail(this.workerError());
      if (this.failed) this.fail(this.failed);
      if (performance.now() > deadline) this.fail(new Error('wasm workers did not load the module within 30 s'));
      Atomics.wait(this.ctrl, CTRL.ACK / 4, ack, 50);
    }
  }

  private write(t: WasmTensor, data: Float32Array, what: string): void {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`${what}: expected ${n} values, got ${data.length}`);
    this.f32(t.addr, n).set(data);
  }

  private run(mod: LoadedStep, x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): StepResult {
    this.check();
    const s = mod.step;
    const classes = s.logits.shape[1]!;
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      if (!Number.isInteger(l) || l < 0 || l >= classes) throw new Error(`cross_entropy: label ${l} of sample ${i} is not a class index in [0, ${classes})`);
    }
    if (this.active !== mod) {
      // Other modules' arenas overlap this one's: its constants may have been overwritten.
      for (const c of s.constants) this.f32(c.addr, 1)[0] = c.value;
      this.active = mod;
    }
    this.write(s.x, x, 'x');
    this.write(s.labels, labels, 'labels');
    if (s.step) {
      if (!Number.isInteger(step) || step < 0 || step >= 2 ** 24) throw new Error(`step must be an integer in [0, 2^24), got ${step}`);
      this.f32(s.step.addr, 1)[0] = step;
    }
    for (const [name, v] of scalarFeeds(Object.keys(s.scalars ?? {}), step, scalars)) this.f32(s.scalars![name]!.addr, 1)[0] = v;

    if (this.profiling) {
      const key = `${s.stage}/${s.batchSize}`;
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
      this.fail(new Error(`wasm ${s.stage} step trapped: ${(e as Error).message}`));
    }
    if (status !== 0) this.fail(this.workerError());
    const loss = this.f32(s.loss.addr, 1)[0]!;
    const logits = this.f32(s.logits.addr, s.logits.shape.reduce((a, b) => a * b, 1)).slice();
    return { loss, logits };
  }

  /** What went wrong on the other threads: the first error a worker posted, or the abort code. */
  private workerError(): Error {
    const code = Atomics.load(this.ctrl, CTRL.ABORT / 4);
    // A worker posts its error before it sets ABORT; give the message a moment to arrive.
    const deadline = performance.now() + 1000;
    do {
      for (const w of this.workers) {
        const m = w.takeError();
        if (m) return new Error(m);
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
