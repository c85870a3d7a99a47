import { KilnError } from '../ir/errors.ts';
import type { Graph } from '../ir/graph.ts';
import { assignPaths, type Module } from './module.ts';
import { callerLoc } from './source-loc.ts';
import { Tensor } from './tensor.ts';
import { underTimeLimit } from './time-limit.ts';
import { Tracer, withTracer, type Mode } from './tracer.ts';

export interface TraceOptions {
  /** One example's shape, without the batch dimension. */
  input: readonly number[];
  batchSize: number;
  mode: Mode;
}

/**
 * Runs the model's forward on a symbolic batch and records the graph, with every parameter and
 * buffer declared up front in state_dict order. Train mode draws dropout and uses batch
 * statistics (recording running-statistics updates); eval mode does neither.
 */
export function trace(model: Module, opts: TraceOptions): Graph {
  const tracer = new Tracer(opts.mode);
  for (const m of assignPaths(model)) {
    for (const [name, decl] of m.declaredState) tracer.declareState(m.path ? `${m.path}.${name}` : name, decl);
  }
  const x = tracer.wrap(tracer.b.op('input', [], { name: 'x', shape: [opts.batchSize, ...opts.input] }));
  const out = withTracer(tracer, () => {
    try {
      return underTimeLimit(`${model.constructor.name}.forward()`, model.loc, () => model.forward(x));
    } catch (e) {
      if (e instanceof KilnError) throw e;
      // A bug in the model's own code: report it at the model line that raised it.
      throw new KilnError('model-error', `forward failed: ${(e as Error).message ?? String(e)}`, callerLoc((e as Error)?.stack), 'fix the model code at this line');
    }
  });
  if (!(out instanceof Tensor) || out.tracer !== tracer) {
    throw new KilnError('model-error', `forward must return the output Tensor, got ${out === undefined ? 'undefined' : typeof out}`, model.loc, 'end forward() with `return x;`');
  }
  const step = tracer.b.nodes.find((n) => n.op === 'input' && n.attrs.name === 'step');
  return {
    stage: 'traced',
    nodes: tracer.b.nodes,
    state: tracer.b.state,
    inputs: { x: x.node, ...(step ? { step: step.id } : {}) },
    outputs: { logits: out.node },
    updates: tracer.updates,
    grads: {},
    batchSize: opts.batchSize,
  };
}
