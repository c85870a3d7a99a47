import { wgslStep } from '../../codegen/wgsl/step.ts';
import type { Graph } from '../../ir/graph.ts';
import type { Program } from '../../ir/program.ts';
import { compileProgram } from '../../passes/compile.ts';
import type { StepSource } from '../backend.ts';
import { WebGpuBackend, type WebGpuRunOptions, type WgslStepLoader } from './backend.ts';
import { openGpu, type Gpu, type OpenGpuOptions } from './device.ts';

export interface WebGpuOptions extends OpenGpuOptions, Omit<WebGpuRunOptions, 'sharedDevice'> {
  /** Graph → Program for each step (default: the full pipeline, fused and planned). */
  readonly lower?: (g: Graph) => Program;
  /** An already-open device (tests share one); dispose leaves it open. */
  readonly gpu?: Gpu;
}

/** Each step traced, lowered and compiled to WGSL on first use (the seed keys dropout masks, baked into the shaders). */
export function compilingWgslLoader(steps: StepSource, seed: number, lower: (g: Graph) => Program = (g) => compileProgram(g)): WgslStepLoader {
  return (kind, batch) => wgslStep(lower(steps[kind](batch)), { seed });
}

/** Opens the best adapter (src/runtime/webgpu/device.ts) and loads the training program on it. */
export async function openWebGpuBackend(steps: StepSource, initial: ReadonlyMap<string, Float32Array>, batchSize: number, seed: number, opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const b = new WebGpuBackend(opts.gpu ?? (await openGpu(opts)), compilingWgslLoader(steps, seed, opts.lower), initial, batchSize, { depth: opts.depth, sharedDevice: opts.gpu !== undefined });
  await b.flush(); // surfaces load errors now rather than at the first step
  return b;
}
