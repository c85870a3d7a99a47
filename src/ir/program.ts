import type { Attrs, Init, Stage } from './graph.ts';
import type { Shape } from './shape.ts';

/**
 * The contract between compiler and runtime: what one step runs, in order, over one arena.
 * The runtime never sees the graph; codegen never sees the model.
 *
 * Every tensor is f32 (class labels, the step counter and pooling argmax indices are stored as
 * f32 integers, exact below 2^24). Offsets and sizes are in bytes; offsets are multiples of
 * ARENA_ALIGN, which satisfies WebGPU's minStorageBufferOffsetAlignment.
 */
export const ARENA_ALIGN = 256;

/** A view of the arena: where a tensor lives and its shape. */
export interface Slice {
  readonly offset: number;
  readonly bytes: number;
  readonly shape: Shape;
}

/**
 * One kernel launch. `kind` names what it computes:
 * - any op of the op table (src/ir/ops): inputs in the op's order, one output, the op's attrs;
 * - a fused kind, documented where the fusion pass defines it (src/passes/fuse.ts), whose
 *   inputs, outputs and attrs are listed there.
 * An output slice may equal an input slice (an in-place update) only when the kind allows it.
 */
export interface Kernel {
  readonly name: string;
  readonly kind: string;
  /** The graph ops computed by this kernel, for dumps. */
  readonly ops: readonly string[];
  readonly attrs: Attrs;
  readonly inputs: readonly Slice[];
  readonly outputs: readonly Slice[];
}

/** A tensor that outlives a step: parameter, buffer or optimizer state (names as in the graph). */
export interface ProgramState {
  readonly name: string;
  readonly kind: 'param' | 'buffer' | 'optim';
  readonly init: Init;
  readonly slice: Slice;
}

export interface MemoryReport {
  /** Bytes the plan uses. */
  readonly arenaBytes: number;
  /** Bytes if every buffer had its own place. */
  readonly naiveBytes: number;
  /** Peak bytes live at once over the schedule: no plan can use less. */
  readonly lowerBoundBytes: number;
}

export interface Program {
  readonly stage: Stage;
  readonly batchSize: number;
  readonly kernels: readonly Kernel[];
  readonly state: readonly ProgramState[];
  /** Per-step inputs the runtime writes: x, labels, step. */
  readonly inputs: Readonly<Record<string, Slice>>;
  /** What the runtime reads after a step: logits, loss. */
  readonly outputs: Readonly<Record<string, Slice>>;
  /** Scalar constants the kernels read, written once at load: slice -> value. */
  readonly constants: readonly { readonly slice: Slice; readonly value: number }[];
  readonly memory: MemoryReport;
}
