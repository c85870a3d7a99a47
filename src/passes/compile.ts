import type { Graph } from '../ir/graph.ts';
import type { Program } from '../ir/program.ts';
import type { Target } from '../ir/target.ts';
import { fuse } from './fuse.ts';
import type { KernelGraph } from './kernel-graph.ts';
import { planMemory } from './plan-memory.ts';
import { recomputeOrStore } from './recompute.ts';
import { schedule } from './schedule.ts';
import { simplify } from './simplify.ts';

/** The kernel graph after each pass from fusion on, for dumps and tests. */
export function kernelStages(g: Graph, target: Target): { simplified: Graph; fused: KernelGraph; recomputed: KernelGraph; scheduled: KernelGraph } {
  const simplified = simplify(g);
  const fused = fuse(simplified, target);
  const recomputed = recomputeOrStore(fused, target);
  return { simplified, fused, recomputed, scheduled: schedule(recomputed) };
}

/**
 * A train or eval graph as the Program a backend runs, compiled for that backend's target:
 * simplify, fuse, recompute or store, schedule, plan memory.
 */
export function compileProgram(g: Graph, target: Target): Program {
  return planMemory(kernelStages(g, target).scheduled);
}
