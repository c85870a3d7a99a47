/// <reference types="@webgpu/types" />
import { STEP_SLOT_BYTES } from '../../../src/codegen/wgsl/shader.ts';
import { wgslStep } from '../../../src/codegen/wgsl/step.ts';
import type { Program, Slice } from '../../../src/ir/program.ts';
import type { Gpu } from '../../../src/runtime/webgpu/device.ts';
import { PipelineCache, ProgramInstance } from '../../../src/runtime/webgpu/instance.ts';

/**
 * Runs a Program once outside any backend: writes `feeds` into the arena (any byte range: a
 * feed may cover the whole arena) and `step` into the step uniform, runs every kernel, reads
 * `reads` back. For kernel-level tests.
 */
export async function runProgramOnce(gpu: Gpu, program: Program, feeds: readonly { offset: number; data: Float32Array }[], reads: readonly Slice[], opts: { seed: number; step?: number }): Promise<Float32Array[]> {
  const seed = opts.seed;
  const { device } = gpu;
  const step = device.createBuffer({ size: STEP_SLOT_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.pushErrorScope('validation');
  const inst = new ProgramInstance('once', wgslStep(program, { seed }), { device, pipelines: new PipelineCache(device), stepBuffer: step });
  for (const f of feeds) device.queue.writeBuffer(inst.arena, f.offset, f.data.buffer, f.data.byteOffset, f.data.byteLength);
  device.queue.writeBuffer(step, 0, Float32Array.of(opts.step ?? 0, 0, 0, 0));
  const size = reads.reduce((n, s) => n + Math.ceil(s.bytes / 16) * 16, 0);
  const rb = device.createBuffer({ size: Math.max(16, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  inst.encode(enc, 0);
  let off = 0;
  const at = reads.map((s) => {
    enc.copyBufferToBuffer(inst.arena, s.offset, rb, off, s.bytes);
    const o = off;
    off += Math.ceil(s.bytes / 16) * 16;
    return o;
  });
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  try {
    if (err) throw new Error(`webgpu: ${err.message}`);
    await rb.mapAsync(GPUMapMode.READ);
    const all = rb.getMappedRange();
    const out = reads.map((s, k) => new Float32Array(all, at[k]!, s.bytes / 4).slice());
    rb.unmap();
    return out;
  } finally {
    rb.destroy();
    step.destroy();
    inst.destroy();
  }
}
