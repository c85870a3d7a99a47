/// <reference types="@webgpu/types" />
import type { WgslStep, WgslStepDispatch } from '../../codegen/artifact.ts';
import { ARENA_ALIGN, type Program, type Slice } from '../../ir/program.ts';

/** A compiled shader shared by every program that emits the same text. */
export interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/** Creates each distinct shader's pipeline once, with a bind group layout built from its reflected bindings. */
export class PipelineCache {
  private readonly cache = new Map<string, Pipeline>();
  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.cache.size;
  }

  get(d: WgslStepDispatch): Pipeline {
    const { code, label } = d;
    let p = this.cache.get(code);
    if (p) return p;
    const layout = this.device.createBindGroupLayout({
      label,
      entries: d.layout.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: b.type === 'storage' ? { type: 'storage' as const } : { type: 'uniform' as const, hasDynamicOffset: true, minBindingSize: b.minBytes },
      })),
    });
    const module = this.device.createShaderModule({ label, code });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: this.device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: d.entryPoint },
    });
    p = { pipeline, layout };
    this.cache.set(code, p);
    return p;
  }
}

export interface BoundDispatch {
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly workgroups: readonly [number, number, number];
  /** Reads the step uniform: bound at a dynamic offset, the step's slot. */
  readonly usesStep: boolean;
}

export interface InstanceOptions {
  readonly device: GPUDevice;
  readonly pipelines: PipelineCache;
  /** The step-uniform buffer every program's step bindings view. */
  readonly stepBuffer: GPUBuffer;
}

/**
 * One Program loaded on the device: its arena (one buffer; each slice is bound at its own offset,
 * a multiple of 256 = minStorageBufferOffsetAlignment), its constants written once, and a
 * pipeline and bind group per dispatch, all made at load.
 */
export class ProgramInstance {
  readonly arena: GPUBuffer;
  readonly program: Program;
  readonly dispatches: readonly BoundDispatch[];
  readonly state: ReadonlyMap<string, Slice>;
  /** State tensors whose copy in this arena is current. */
  readonly valid = new Set<string>();

  constructor(
    readonly key: string,
    readonly step: WgslStep,
    o: InstanceOptions,
  ) {
    const { device } = o;
    const lim = device.limits;
    const program = (this.program = step.program);
    let end = program.memory.arenaBytes;
    const slices = [...program.kernels.flatMap((k) => [...k.inputs, ...k.outputs]), ...Object.values(program.inputs), ...Object.values(program.outputs), ...program.state.map((s) => s.slice)];
    for (const s of slices) {
      if (s.offset % Math.max(ARENA_ALIGN, lim.minStorageBufferOffsetAlignment) !== 0) throw new Error(`webgpu: a slice at offset ${s.offset} is not aligned to ${lim.minStorageBufferOffsetAlignment} bytes`);
      if (s.bytes > lim.maxStorageBufferBindingSize) throw new Error(`webgpu: a ${s.bytes}-byte tensor exceeds this adapter's maxStorageBufferBindingSize (${lim.maxStorageBufferBindingSize})`);
      end = Math.max(end, s.offset + s.bytes);
    }
    const size = Math.ceil(end / 4) * 4;
    if (size > lim.maxBufferSize) throw new Error(`webgpu: the ${program.stage} arena (${size} bytes) exceeds this adapter's maxBufferSize (${lim.maxBufferSize})`);
    this.arena = device.createBuffer({ label: `${key} arena`, size: Math.max(size, 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    for (const c of program.constants) device.queue.writeBuffer(this.arena, c.slice.offset, Float32Array.of(c.value));

    const dispatches: BoundDispatch[] = [];
    for (const d of step.dispatches) {
      const storage = d.bindings.filter((b) => b.kind === 'arena').length;
      if (storage > lim.maxStorageBuffersPerShaderStage) {
        throw new Error(`webgpu: ${d.label} binds ${storage} storage buffers; this adapter allows ${lim.maxStorageBuffersPerShaderStage} per shader stage`);
      }
      const p = o.pipelines.get(d);
      const bindGroup = device.createBindGroup({
        label: d.label,
        layout: p.layout,
        entries: d.bindings.map((b) => ({
          binding: b.binding,
          resource: b.kind === 'arena' ? { buffer: this.arena, offset: b.slice.offset, size: b.slice.bytes } : { buffer: o.stepBuffer, offset: 0, size: 16 },
        })),
      });
      dispatches.push({ label: d.label, pipeline: p.pipeline, bindGroup, workgroups: d.workgroups, usesStep: d.bindings.some((b) => b.kind === 'step') });
    }
    this.dispatches = dispatches;
    this.state = new Map(program.state.map((s) => [s.name, s.slice]));
  }

  /** Records the step's dispatches into one compute pass; `stepOffset` is its step-uniform slot. */
  encode(enc: GPUCommandEncoder, stepOffset: number): void {
    const pass = enc.beginComputePass({ label: this.key });
    for (const d of this.dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup, d.usesStep ? [stepOffset] : []);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
    }
    pass.end();
  }

  destroy(): void {
    this.arena.destroy();
  }
}
