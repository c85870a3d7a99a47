import { wgslStep } from '../../codegen/wgsl/step.ts';
import { webgpuTarget } from '../../codegen/wgsl/target.ts';
import type { Graph } from '../../ir/graph.ts';
import type { Program } from '../../ir/program.ts';
import type { Target } from '../../ir/target.ts';
import { compileProgram } from '../../passes/compile.ts';
import type { StepSource } from '../backend.ts';
import { WebGpuBackend, type WebGpuRunOptions, type WgslStepLoader } from './backend.ts';
import { openGpu, type Gpu, type OpenGpuOptions } from './device.ts';

export interface WebGpuOptions extends OpenGpuOptions, Omit<WebGpuRunOptions, 'sharedDevice'> {
  /** Graph → Program for each step, for the device's target (default: the full pipeline, fused and planned). */
  readonly lower?: (g: Graph, target: Target) => Program;
  /** An already-open device (tests share one); dispose leaves it open. */
  readonly gpu?: Gpu;
}

/** What a device allows: its own storage-buffer limit, which requestKilnDevice raised to the adapter's. */
export function deviceTarget(gpu: Gpu): Target {
  return webgpuTarget(gpu.device.limits.maxStorageBuffersPerShaderStage);
}

/** Each step traced, lowered for `target` and compiled to WGSL on first use (the seed keys dropout masks, baked into the shaders). */
export function compilingWgslLoader(steps: StepSource, seed: number, target: Target, lower: (g: Graph, target: Target) => Program = compileProgram): WgslStepLoader {
  return (kind, batch) => wgslStep(lower(steps[kind](batch), target), { seed });
}

/** Opens the best adapter (src/runtime/webgpu/device.ts) and loads the training program on it. */
export async function openWebGpuBackend(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu = opts.gpu ?? (await openGpu(opts));
  const b = new WebGpuBackend(gpu, compilingWgslLoader(steps, seed, deviceTarget(gpu), opts.lower), initial, batchSize, { depth: opts.depth, sharedDevice: opts.gpu !== undefined });
  await b.flush(); // surfaces load errors now rather than at the first step
  return b;
}
