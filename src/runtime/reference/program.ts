import type { Kernel, Program, Slice } from '../../ir/program.ts';
import { numel } from '../../ir/shape.ts';
import { fusedKernels, runOp, type FusedKernel, type Tensor } from './fused.ts';
import type { KernelContext } from './kernels/index.ts';

/** The f32 elements of a slice, as a view of the arena. */
export function sliceOf(arena: Float32Array, s: Slice): Float32Array {
  return arena.subarray(s.offset / 4, s.offset / 4 + numel(s.shape));
}

/** A fresh arena for a Program: zeroed, with its constants written (what a backend does at load). */
export function newArena(p: Program): Float32Array {
  const arena = new Float32Array(p.memory.arenaBytes / 4);
  for (const c of p.constants) sliceOf(arena, c.slice).fill(c.value);
  return arena;
}

const fused: Readonly<Partial<Record<string, FusedKernel>>> = fusedKernels;

function runKernel(k: Kernel, arena: Float32Array, ctx: KernelContext): Tensor[] {
  const ins = k.inputs.map((s): Tensor => ({ data: sliceOf(arena, s), shape: s.shape }));
  const kernel = fused[k.kind];
  if (kernel) return kernel(k, ins, ctx);
  return [runOp(k.kind, k.attrs, ins, ctx, k.outputs[0]!.shape)];
}

/**
 * Runs one step of a Program kernel by kernel over its arena: each kernel reads its input slices
 * and writes its output slices, nothing else. A kernel computes all its outputs before writing
 * any, so this backend is indifferent to in-place writes; whether they are legal is the
 * verifier's question (src/ir/verify-program.ts). Everything else about the plan shows: a value
 * overwritten while still live is read wrong by a later kernel.
 */
export function executeProgram(p: Program, arena: Float32Array, ctx: KernelContext, watch?: KernelWatch): void {
  for (const k of p.kernels) {
    if (watch && !watch(k, 'before')) return;
    const outs = runKernel(k, arena, ctx);
    if (outs.length !== k.outputs.length) throw new Error(`reference backend: ${k.name} (${k.kind}) computed ${outs.length} outputs for ${k.outputs.length} slices`);
    outs.forEach((t, i) => {
      const s = k.outputs[i]!;
      if (t.data.length !== numel(s.shape)) throw new Error(`reference backend: ${k.name} output ${i} has ${t.data.length} values for a slice of shape [${s.shape}]`);
      sliceOf(arena, s).set(t.data);
    });
    if (watch && !watch(k, 'after')) return;
  }
}

/** Looks at the arena around each kernel (check-numerics.ts); false stops the step there. */
export type KernelWatch = (k: Kernel, phase: 'before' | 'after') => boolean;
