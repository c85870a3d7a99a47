export type { Expr, ExprStep } from './expr.ts';
import type { Expr } from './expr.ts';
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
  /**
   * The tensor it holds, for dumps and the verifier: a state or input name (`conv1.weight`, `x`),
   * a graph value (`%12`), or a value the compiler made (`%7.argmax`). Two slices of one kernel
   * list with the same name hold the same data.
   */
  readonly value?: string;
}

/**
 * One kernel launch. `kind` names what it computes:
 * - any op of the op table (src/ir/ops): inputs in the op's order, one output, the op's attrs;
 * - `copy`: one input, one output of the same size;
 * - a fused kind: every one is documented, with its inputs, outputs, attrs and `expr`, in the
 *   table of src/ir/kernels.ts.
 * An output slice may equal an input slice (an in-place update) only when the kind allows it
 * (kernels.ts, `inPlaceAllowed`); outputs never overlap inputs otherwise.
 */
export interface Kernel {
  readonly name: string;
  readonly kind: string;
  /** The graph ops computed by this kernel, for dumps. */
  readonly ops: readonly string[];
  readonly attrs: Attrs;
  readonly inputs: readonly Slice[];
  readonly outputs: readonly Slice[];
  /** The elementwise part of a fused kind, over the primitives of src/ir/expr.ts (absent on plain kinds). */
  readonly expr?: Expr;
}

/** A tensor that outlives a step: parameter, buffer or optimizer state (names as in the graph). */
export interface ProgramState {
  readonly name: string;
  readonly kind: 'param' | 'buffer' | 'optim';
  readonly init: Init;
  readonly slice: Slice;
  /** The value (`Slice.value`) the step leaves in the slice, when the step updates it. */
  readonly update?: string;
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
  /**
   * Per-step inputs the runtime writes before each step: x, labels, step, and under a
   * learning-rate schedule the scalars lr and momentum (src/runtime/schedule.ts). Their bytes may be
   * reused by later kernels of the step once the input is dead, so write them again every step.
   */
  readonly inputs: Readonly<Record<string, Slice>>;
  /** What the runtime reads after a step: logits, loss. */
  readonly outputs: Readonly<Record<string, Slice>>;
  /** Scalar constants the kernels read, written once at load: slice -> value. */
  readonly constants: readonly { readonly slice: Slice; readonly value: number }[];
  /** Where the step leaves each parameter's gradient (train stage; never overwritten in the step). */
  readonly grads?: Readonly<Record<string, Slice>>;
  readonly memory: MemoryReport;
}

/**
 * Whether `s` is the step input, which shaders read from a uniform instead of the arena. Not by
 * place alone: the step's bytes are reused once it is dead (see Program.inputs; under SGD, which
 * never reads it, that is from the first kernel on), so a later one-element value can have the
 * step's offset and size, and reading it from the uniform would read the step counter instead.
 */
export function isStepSlice(p: Pick<Program, 'inputs'>, s: Slice): boolean {
  const step = p.inputs.step;
  return step !== undefined && s.offset === step.offset && s.bytes === step.bytes && s.value === step.value;
}
