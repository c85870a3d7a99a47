import type { SourceLoc } from './errors.ts';
import type { Shape } from './shape.ts';

export type AttrValue = number | boolean | string | readonly number[] | null;
export type Attrs = Readonly<Record<string, AttrValue>>;

/** Which part of a training step a node belongs to; dumps draw them apart. */
export type Phase = 'forward' | 'backward' | 'update';

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: Attrs;
  readonly shape: Shape;
  readonly phase: Phase;
  /** The model file's call that made this node. */
  readonly loc?: SourceLoc;
  /** The module that made it, by state_dict path (`conv1`, `block.0`). */
  readonly scope?: string;
}

/** How a persistent tensor starts, following PyTorch's defaults. */
export type Init =
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'constant'; value: number };

/**
 * A tensor that lives across steps: a trainable parameter, a buffer (batch-norm running
 * statistics) or optimizer state. Names follow PyTorch's state_dict (`conv1.weight`,
 * `bn.running_mean`); optimizer state is named `<param>.<slot>` (`fc1.weight.exp_avg`).
 */
export interface StateTensor {
  readonly name: string;
  readonly shape: Shape;
  readonly kind: 'param' | 'buffer' | 'optim';
  readonly init: Init;
  /** The leaf node that reads it. */
  readonly node: number;
}

export type Stage = 'traced' | 'train' | 'eval';

export interface Graph {
  readonly stage: Stage;
  /** Topologically ordered; `nodes[i].id === i`. */
  readonly nodes: readonly Node[];
  readonly state: readonly StateTensor[];
  /** Per-step inputs: the image batch, the labels, the step counter (RNG key, Adam bias correction). */
  readonly inputs: Readonly<Record<string, number>>;
  /** Values read after a step: `logits`, `loss`. */
  readonly outputs: Readonly<Record<string, number>>;
  /** What the step writes back into persistent tensors: name -> node holding the new value. */
  readonly updates: Readonly<Record<string, number>>;
  /** Gradient of the loss for each trainable parameter (train stage). */
  readonly grads: Readonly<Record<string, number>>;
  readonly batchSize: number;
}
