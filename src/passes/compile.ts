import type { Graph } from '../ir/graph.ts';
import type { Program } from '../ir/program.ts';
import { fuse } from './fuse.ts';
import type { KernelGraph } from './kernel-graph.ts';
import { planMemory } from './plan-memory.ts';
import { recomputeOrStore } from './recompute.ts';
import { schedule } from './schedule.ts';
import { simplify } from './simplify.ts';

export interface CompileOptions {
  /** Most storage buffers a kernel may bind (default: WebGPU's 8). */
  maxStorageBuffers?: number;
}

/** The kernel graph after each pass from fusion on, for dumps and tests. */
export function kernelStages(g: Graph, opts: CompileOptions = {}): { simplified: Graph; fused: KernelGraph; recomputed: KernelGraph; scheduled: KernelGraph } {
  const simplified = simplify(g);
  const fused = fuse(simplified, opts);
  const recomputed = recomputeOrStore(fused, opts);
  return { simplified, fused, recomputed, scheduled: schedule(recomputed) };
}

/** A train or eval graph as the Program a backend runs: simplify, fuse, recompute or store, schedule, plan memory. */
export function compileProgram(g: Graph, opts: CompileOptions = {}): Program {
  return planMemory(kernelStages(g, opts).scheduled);
}
