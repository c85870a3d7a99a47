import { GraphBuilder } from '../ir/builder.ts';
import type { Graph } from '../ir/graph.ts';
import type { ResolvedOptimizer } from '../frontend/training-options.ts';
import { differentiate } from './autodiff.ts';
import { eliminateDeadCode } from './dce.ts';
import { lowerOptimizer } from './optimizer.ts';

/** Adds the labels input and the mean cross-entropy loss to a traced forward graph. */
function withLoss(traced: Graph): { b: GraphBuilder; labels: number; loss: number } {
  const b = new GraphBuilder(traced);
  const logits = traced.outputs.logits!;
  b.loc = b.node(logits).loc;
  // A label per row of the logits: per example, or per position for a language model, whose
  // logits are [batch·T, V] (PyTorch's cross_entropy(logits.view(-1, V), targets.view(-1))).
  const labels = b.op('input', [], { name: 'labels', shape: [b.node(logits).shape[0]!] });
  const loss = b.op('cross_entropy', [logits, labels]);
  return { b, labels, loss };
}

/**
 * The whole training step as one graph: forward (traced in train mode), loss, the gradient of
 * every parameter, the optimizer update and the batch-norm running statistics.
 */
export function buildTrainGraph(traced: Graph, optimizer: ResolvedOptimizer): Graph {
  if (traced.stage !== 'traced') throw new Error(`buildTrainGraph needs a traced graph, got ${traced.stage}`);
  const { b, labels, loss } = withLoss(traced);
  const step = traced.inputs.step ?? b.op('input', [], { name: 'step', shape: [] });
  const params = traced.state.filter((s) => s.kind === 'param');
  const grads = differentiate(b, loss, params.map((p) => p.node));
  const lowered = lowerOptimizer(b, params, grads, optimizer, step);
  const updates = { ...traced.updates, ...lowered.updates };
  return eliminateDeadCode({
    stage: 'train',
    nodes: b.nodes,
    state: b.state,
    inputs: { ...traced.inputs, labels, step, ...lowered.inputs },
    outputs: { logits: traced.outputs.logits!, loss },
    updates,
    grads: Object.fromEntries(params.flatMap((p) => (grads.has(p.node) ? [[p.name, grads.get(p.node)!]] : []))),
    batchSize: traced.batchSize,
  });
}

/** The evaluation step: forward traced in eval mode, plus the loss; nothing is updated. */
export function buildEvalGraph(tracedEval: Graph): Graph {
  const { b, labels, loss } = withLoss(tracedEval);
  return { ...tracedEval, stage: 'eval', nodes: b.nodes, inputs: { ...tracedEval.inputs, labels }, outputs: { ...tracedEval.outputs, loss }, updates: {} };
}
