import { GraphBuilder } from '../ir/builder.ts';
import { KilnError } from '../ir/errors.ts';
import type { Attrs } from '../ir/graph.ts';
import type { Shape } from '../ir/shape.ts';
import type { StateDecl } from './module.ts';
import { callerLoc } from './source-loc.ts';
import { Tensor } from './tensor.ts';

export type Mode = 'train' | 'eval';

/**
 * More ops than any real forward records (a ResNet-152 records ~1k, a 28-step unrolled RNN a few
 * hundred): past this, forward is almost surely looping forever, and failing beats tracing until
 * memory runs out.
 */
export const MAX_TRACED_OPS = 20_000;

/** Records the ops a forward pass performs on symbolic tensors into a graph. */
export class Tracer {
  /** Persistent-tensor updates the forward asks for (batch-norm running statistics). */
  readonly updates: Record<string, number> = {};
  private dropoutSites = 0;
  private stepNode: number | undefined;
  private readonly stateNodes = new Map<string, number>();

  /** `b`: a builder to record into (tests trace layers into a graph they made). */
  constructor(
    readonly mode: Mode,
    readonly b = new GraphBuilder(),
  ) {}

  /** Adds one op, stamped with the model file's calling line and the current module. */
  op(op: string, inputs: readonly Tensor[], attrs: Attrs = {}): Tensor {
    for (const t of inputs) {
      if (t.tracer !== this) throw new KilnError('trace', 'a tensor from another trace was used', callerLoc());
    }
    if (this.b.nodes.length >= MAX_TRACED_OPS) {
      throw new KilnError('trace', `forward recorded ${MAX_TRACED_OPS.toLocaleString('en-US')} ops without returning; does a loop in it never end?`, callerLoc(), 'loops in forward must end after a fixed number of iterations');
    }
    const outer = this.b.loc;
    this.b.loc = outer ?? callerLoc();
    try {
      return this.wrap(this.b.op(op, inputs.map((t) => t.node), attrs));
    } finally {
      this.b.loc = outer;
    }
  }

  /** Declares a parameter or buffer; done for the whole model before forward runs. */
  declareState(name: string, decl: StateDecl): void {
    this.stateNodes.set(name, this.b.addState({ name, ...decl }));
  }

  stateTensor(name: string): Tensor {
    const node = this.stateNodes.get(name);
    if (node === undefined) throw new Error(`state ${name} was not declared before tracing`);
    return this.wrap(node);
  }

  wrap(node: number): Tensor {
    return new Tensor(this, node);
  }

  shape(node: number): Shape {
    return this.b.node(node).shape;
  }

  constant(value: number): Tensor {
    return this.wrap(this.b.constant(value));
  }

  /** The per-step counter, created on first use (only models with dropout need it in forward). */
  step(): Tensor {
    this.stepNode ??= this.b.op('input', [], { name: 'step', shape: [] });
    return this.wrap(this.stepNode);
  }

  nextDropoutStream(): number {
    return this.dropoutSites++;
  }

  /** Runs `fn` with nodes attributed to the module at `scope` and the model line that called it. */
  within<T>(scope: string, fn: () => T): T {
    const [loc, sc] = [this.b.loc, this.b.scope];
    this.b.loc = loc ?? callerLoc();
    this.b.scope = scope;
    try {
      return fn();
    } finally {
      this.b.loc = loc;
      this.b.scope = sc;
    }
  }
}

let active: Tracer | undefined;

export function withTracer<T>(t: Tracer, fn: () => T): T {
  const prev = active;
  active = t;
  try {
    return fn();
  } finally {
    active = prev;
  }
}

export function currentTracer(what: string): Tracer {
  if (!active) throw new KilnError('trace', `${what} was called outside of tracing`, callerLoc(), 'layers run only inside forward(), which kiln calls when it traces the model');
  return active;
}
