import type { Graph, Stage } from '../ir/graph.ts';
import type { LoadedModel } from '../frontend/loader.ts';
import { trace } from '../frontend/trace.ts';
import type { ResolvedOptimizer } from '../frontend/training-options.ts';
import { buildEvalGraph, buildTrainGraph } from '../passes/train-graph.ts';

export interface GraphOptions {
  batchSize: number;
  optimizer: ResolvedOptimizer;
}

/** The graph of one stage of a loaded model; each trace uses a fresh model instance. */
export function graphFor(loaded: LoadedModel, stage: Stage, opts: GraphOptions): Graph {
  const input = loaded.training.input;
  const traced = (mode: 'train' | 'eval') => trace(loaded.create(), { input, batchSize: opts.batchSize, mode });
  switch (stage) {
    case 'traced':
      return traced('train');
    case 'train':
      return buildTrainGraph(traced('train'), opts.optimizer);
    case 'eval':
      return buildEvalGraph(traced('eval'));
  }
}
