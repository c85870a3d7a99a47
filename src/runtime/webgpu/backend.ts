/// <reference types="@webgpu/types" />
import type { WgslStep } from '../../codegen/artifact.ts';
import { STEP_SLOT_BYTES } from '../../codegen/wgsl/shader.ts';
import type { Program, Slice } from '../../ir/program.ts';
import { numel } from '../../ir/shape.ts';
import { batchOf, scalarFeeds, type Backend, type QueuedSteps, type StepResult, type StepScalars } from '../backend.ts';
import type { Gpu } from './device.ts';
import { PipelineCache, ProgramInstance } from './instance.ts';

export interface WebGpuRunOptions {
  /** Steps recorded before a submit (each step is one command buffer). Default 16. */
  readonly depth?: number;
  /** Whether the device belongs to the caller (tests share one), which dispose then leaves open. */
  readonly sharedDevice?: boolean;
}

/** A step's shaders, built or read from a bundle on first use (kind, batch size). */
export type WgslStepLoader = (kind: 'train' | 'eval', batch: number) => WgslStep;

/**
 * Space in a list of GPU buffers handed out front to back; reset() makes it all free again.
 * Uploads reset after each submit (a queue.writeBuffer issued after a submit is ordered after
 * it); readbacks after each flush.
 */
class Chunks {
  private readonly bufs: GPUBuffer[] = [];
  private cur = 0;
  private cursor = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: number,
    private readonly chunkBytes: number,
    private readonly label: string,
  ) {}

  alloc(bytes: number): { buffer: GPUBuffer; offset: number } {
    const need = Math.ceil(bytes / 16) * 16;
    if (this.bufs[this.cur] && this.cursor + need > this.bufs[this.cur]!.size) {
      this.cur++;
      this.cursor = 0;
    }
    const b = this.bufs[this.cur];
    if (!b || b.size < need) {
      b?.destroy();
      this.bufs[this.cur] = this.device.createBuffer({ label: `${this.label} ${this.cur}`, size: Math.max(this.chunkBytes, need), usage: this.usage });
    }
    const offset = this.cursor;
    this.cursor += need;
    return { buffer: this.bufs[this.cur]!, offset };
  }

  /** Buffers handed out since the last reset. */
  get used(): GPUBuffer[] {
    return this.cursor === 0 && this.cur === 0 ? [] : this.bufs.slice(0, this.cur + 1);
  }

  reset(): void {
    this.cur = 0;
    this.cursor = 0;
  }

  destroy(): void {
    for (const b of this.bufs) b.destroy();
  }
}

interface PendingRead {
  readonly buffer: GPUBuffer;
  readonly offset: number;
  readonly logits: number;
}

/**
 * The WebGPU backend: each (stage, batch size) step's shaders come from `load` (compiled by kiln,
 * or read from a standalone bundle) and are loaded once (ProgramInstance), every step is one command buffer (input uploads, the step's dispatches in
 * one compute pass, copies of the loss and logits to a readback buffer), `depth` steps go in one
 * submit, and results are mapped only at flush.
 *
 * Persistent tensors live in the arena of whichever program last updated them; before a program
 * runs, every state tensor whose copy in its arena is stale is copied over on the device
 * (copyBufferToBuffer between arenas), so train and eval programs of any batch size share state
 * without a trip through the host.
 */
export class WebGpuBackend implements Backend, QueuedSteps {
  readonly name = 'webgpu';
  readonly stateShapes: ReadonlyMap<string, readonly number[]>;
  readonly depth: number;
  readonly queued: QueuedSteps = this;
  /** The adapter, in words. */
  readonly description: string;
  /** Whether the adapter is a software rasterizer (llvmpipe). */
  readonly software: boolean;
  readonly device: GPUDevice;
  private readonly instances = new Map<string, ProgramInstance>();
  private readonly owner = new Map<string, ProgramInstance>();
  private readonly pipelines: PipelineCache;
  private readonly stepBuffer: GPUBuffer;
  private readonly uploads: Chunks;
  private readonly readbacks: Chunks;
  private pendingCommands: GPUCommandBuffer[] = [];
  private pendingReads: PendingRead[] = [];
  private mirror = new Map<string, Float32Array>();
  private stale = false;
  private error?: string;
  private loadChecks: Promise<GPUError | null>[] = [];
  private readonly ownsDevice: boolean;
  /** Values of x per example: a step's batch is x's length over this. */
  private readonly exampleSize: number;
  /** Dispatches recorded per train step, for reports. */
  dispatchesPerStep = 0;

  constructor(
    gpu: Gpu,
    private readonly load: WgslStepLoader,
    initial: ReadonlyMap<string, Float32Array>,
    batchSize: number,
    opts: WebGpuRunOptions = {},
  ) {
    this.device = gpu.device;
    this.description = gpu.description;
    this.software = gpu.software;
    this.depth = opts.depth ?? 16;
    this.ownsDevice = !opts.sharedDevice;
    this.device.onuncapturederror = (e) => {
      this.error ??= e.error.message;
    };
    this.pipelines = new PipelineCache(this.device);
    this.stepBuffer = this.device.createBuffer({ label: 'step uniform', size: this.depth * STEP_SLOT_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    this.uploads = new Chunks(this.device, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 4 << 20, 'uploads');
    this.readbacks = new Chunks(this.device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 1 << 20, 'readbacks');
    const main = this.instance('train', batchSize);
    this.exampleSize = numel(main.program.inputs.x!.shape) / batchSize;
    this.dispatchesPerStep = main.dispatches.length;
    this.stateShapes = new Map(main.program.state.map((s) => [s.name, s.slice.shape]));
    for (const [name, data] of initial) this.setState(name, data);
  }

  prepare(kind: 'train' | 'eval', batch: number): void {
    this.instance(kind, batch);
  }

  /** The program for a stage and batch size, loaded on first use. */
  private instance(stage: 'train' | 'eval', batch: number): ProgramInstance {
    const key = `${stage}/${batch}`;
    let inst = this.instances.get(key);
    if (inst) return inst;
    const step = this.load(stage, batch);
    this.device.pushErrorScope('validation');
    inst = new ProgramInstance(key, step, { device: this.device, pipelines: this.pipelines, stepBuffer: this.stepBuffer });
    this.loadChecks.push(this.device.popErrorScope());
    this.instances.set(key, inst);
    for (const name of inst.state.keys()) if (!this.owner.has(name)) this.owner.set(name, inst);
    return inst;
  }

  private ownerOf(name: string): ProgramInstance {
    const o = this.owner.get(name);
    if (!o) throw new Error(`no persistent tensor named ${name}`);
    return o;
  }

  setState(name: string, data: Float32Array): void {
    const shape = this.stateShapes.get(name);
    if (!shape) throw new Error(`no persistent tensor named ${name}`);
    if (data.length !== numel(shape)) throw new Error(`${name}: expected ${numel(shape)} values, got ${data.length}`);
    // Queued steps must run before this write: writeBuffer is ordered before unsubmitted work.
    this.submit();
    const o = this.ownerOf(name);
    this.device.queue.writeBuffer(o.arena, o.state.get(name)!.offset, Float32Array.from(data));
    for (const inst of this.instances.values()) inst.valid.delete(name);
    o.valid.add(name);
    this.mirror.set(name, Float32Array.from(data));
  }

  getState(name: string): Float32Array {
    if (!this.stateShapes.has(name)) throw new Error(`no persistent tensor named ${name}`);
    if (this.stale) throw new Error(`webgpu: ${name} on the device has changed since the last sync; await backend.queued.sync() (syncState) before getState`);
    return Float32Array.from(this.mirror.get(name)!);
  }

  trainStep(): StepResult {
    throw new Error('webgpu steps run asynchronously: use backend.queued (runTrainStep in src/runtime/backend.ts)');
  }

  evalStep(): StepResult {
    throw new Error('webgpu steps run asynchronously: use backend.queued (runEvalStep in src/runtime/backend.ts)');
  }

  queueTrainStep(x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): void {
    this.queue('train', x, labels, step, scalars);
  }

  queueEvalStep(x: Float32Array, labels: Float32Array): void {
    this.queue('eval', x, labels, 0);
  }

  /** Records one step as one command buffer; submits every `depth` steps. */
  private queue(stage: 'train' | 'eval', x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): void {
    const inst = this.instance(stage, batchOf(x, this.exampleSize));
    const p = inst.program;
    const slot = this.pendingCommands.length;
    const enc = this.device.createCommandEncoder({ label: `${inst.key} step ${step}` });

    // Stale state tensors come from the arena that holds them now.
    for (const [name, slice] of inst.state) {
      if (inst.valid.has(name)) continue;
      const from = this.ownerOf(name);
      enc.copyBufferToBuffer(from.arena, from.state.get(name)!.offset, inst.arena, slice.offset, slice.bytes);
      inst.valid.add(name);
    }

    this.upload(enc, inst, p.inputs.x, x, 'x');
    this.upload(enc, inst, p.inputs.labels, labels, 'labels');
    const stepOffset = slot * STEP_SLOT_BYTES;
    // The step's slot: the counter (the shaders' uniform, its first 16 bytes), then the other
    // scalar inputs, each copied into the arena by this step's own commands (a writeBuffer
    // straight into the arena would land before the queued steps before it ran).
    const others = scalarFeeds(Object.keys(p.inputs), step, scalars).filter(([name]) => name !== 'step');
    this.device.queue.writeBuffer(this.stepBuffer, stepOffset, Float32Array.of(step, 0, 0, 0, ...others.map(([, v]) => v)));
    if (p.inputs.step) enc.copyBufferToBuffer(this.stepBuffer, stepOffset, inst.arena, p.inputs.step.offset, 4);
    others.forEach(([name], k) => enc.copyBufferToBuffer(this.stepBuffer, stepOffset + 16 + 4 * k, inst.arena, p.inputs[name]!.offset, 4));

    inst.encode(enc, stepOffset);

    const loss = p.outputs.loss!;
    const logits = p.outputs.logits!;
    const rb = this.readbacks.alloc(4 + logits.bytes);
    enc.copyBufferToBuffer(inst.arena, loss.offset, rb.buffer, rb.offset, 4);
    enc.copyBufferToBuffer(inst.arena, logits.offset, rb.buffer, rb.offset + 4, logits.bytes);
    this.pendingReads.push({ buffer: rb.buffer, offset: rb.offset, logits: numel(logits.shape) });
    this.pendingCommands.push(enc.finish());

    if (stage === 'train') {
      // A training step may update any state tensor it holds: its copies are now the only current ones.
      for (const name of inst.state.keys()) {
        for (const other of this.instances.values()) if (other !== inst) other.valid.delete(name);
        this.owner.set(name, inst);
      }
    }
    this.stale = true;
    if (this.pendingCommands.length >= this.depth) this.submit();
  }

  private upload(enc: GPUCommandEncoder, inst: ProgramInstance, slice: Slice | undefined, data: Float32Array, what: string): void {
    if (!slice) throw new Error(`webgpu: the ${inst.program.stage} program has no input '${what}'`);
    if (data.length !== numel(slice.shape)) throw new Error(`webgpu: input '${what}' has ${data.length} values, the program expects ${numel(slice.shape)}`);
    const up = this.uploads.alloc(slice.bytes);
    this.device.queue.writeBuffer(up.buffer, up.offset, data.buffer, data.byteOffset, slice.bytes);
    enc.copyBufferToBuffer(up.buffer, up.offset, inst.arena, slice.offset, slice.bytes);
  }

  /** Submits the recorded steps (without waiting for them). */
  private submit(): void {
    if (this.pendingCommands.length === 0) return;
    this.device.queue.submit(this.pendingCommands);
    this.pendingCommands = [];
    this.uploads.reset();
  }

  private async check(): Promise<void> {
    const checks = this.loadChecks;
    this.loadChecks = [];
    for (const e of await Promise.all(checks)) if (e) throw new Error(`webgpu: loading a program failed: ${e.message}`);
    if (this.error) throw new Error(`webgpu: ${this.error}`);
  }

  async flush(): Promise<StepResult[]> {
    this.submit();
    const reads = this.pendingReads;
    this.pendingReads = [];
    const bufs = this.readbacks.used;
    await Promise.all(bufs.map((b) => b.mapAsync(GPUMapMode.READ)));
    try {
      await this.check();
      const views = new Map(bufs.map((b) => [b, b.getMappedRange()]));
      return reads.map((r) => {
        const f = new Float32Array(views.get(r.buffer)!, r.offset, 1 + r.logits);
        return { loss: f[0]!, logits: f.slice(1) };
      });
    } finally {
      for (const b of bufs) b.unmap();
      this.readbacks.reset();
    }
  }

  async sync(): Promise<void> {
    const names = [...this.stateShapes.keys()];
    const enc = this.device.createCommandEncoder({ label: 'sync state' });
    const total = names.reduce((n, name) => n + Math.ceil(this.ownerOf(name).state.get(name)!.bytes / 16) * 16, 0);
    const rb = this.device.createBuffer({ label: 'state readback', size: Math.max(16, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const at = new Map<string, number>();
    let off = 0;
    for (const name of names) {
      const o = this.ownerOf(name);
      const s = o.state.get(name)!;
      enc.copyBufferToBuffer(o.arena, s.offset, rb, off, s.bytes);
      at.set(name, off);
      off += Math.ceil(s.bytes / 16) * 16;
    }
    this.pendingCommands.push(enc.finish());
    this.submit();
    await rb.mapAsync(GPUMapMode.READ);
    try {
      await this.check();
      const all = rb.getMappedRange();
      for (const name of names) this.mirror.set(name, new Float32Array(all, at.get(name)!, numel(this.stateShapes.get(name)!)).slice());
      this.stale = false;
    } finally {
      rb.unmap();
      rb.destroy();
    }
  }

  /** Every loaded program, with its WGSL, for reports and dumps (the training program first). */
  get programs(): ProgramInstance[] {
    return [...this.instances.values()];
  }

  /** The training step's Program at the batch size the backend was made for (`kiln bench` reads it). */
  get program(): Program {
    return this.programs[0]!.program;
  }

  dispose(): void {
    for (const inst of this.instances.values()) inst.destroy();
    this.uploads.destroy();
    this.readbacks.destroy();
    this.stepBuffer.destroy();
    if (this.ownsDevice) this.device.destroy();
  }
}
