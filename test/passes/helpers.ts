import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { trace } from '../../src/frontend/trace.ts';
import type { Module } from '../../src/frontend/module.ts';
import { resolveOptimizer, type OptimizerOptions } from '../../src/frontend/training-options.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { numel } from '../../src/ir/shape.ts';
import type { Program } from '../../src/ir/program.ts';
import { executeGraph } from '../../src/runtime/reference/execute.ts';
import { executeProgram, newArena, sliceOf } from '../../src/runtime/reference/program.ts';
import { initialState } from '../../src/runtime/init.ts';
import { buildEvalGraph, buildTrainGraph } from '../../src/passes/train-graph.ts';
import { rng } from '../runtime/reference/helpers.ts';

export const SAMPLES = ['simple-cnn', 'lenet', 'mlp'] as const;
export type Sample = (typeof SAMPLES)[number];

/** The train or eval graph of a sample model (lint skipped: these tests are about passes). */
export async function sampleGraph(name: Sample, stage: 'train' | 'eval', batchSize = 8): Promise<Graph> {
  const m = await loadModelFile(`samples/${name}.ts`, { lint: false });
  return graphFor(m, stage, { batchSize, optimizer: m.training.optimizer });
}

/** The train and eval graphs of a model built in a test. */
export function modelGraphs(make: () => Module, input: number[], batchSize: number, opt: OptimizerOptions = { type: 'adam', lr: 1e-3 }): { train: Graph; eval: Graph } {
  const optimizer = resolveOptimizer(opt, (m) => {
    throw new Error(m);
  });
  return {
    train: buildTrainGraph(trace(make(), { input, batchSize, mode: 'train' }), optimizer),
    eval: buildEvalGraph(trace(make(), { input, batchSize, mode: 'eval' })),
  };
}

/** Random feeds and initial state for a graph: images in [-1, 1), labels in range, step 3. */
export function randomFeeds(g: Graph, seed: number): { feeds: Record<string, Float32Array>; state: Map<string, Float32Array> } {
  const r = rng(seed);
  const feeds: Record<string, Float32Array> = {};
  const logits = g.nodes[g.outputs.logits!]!.shape;
  for (const [name, id] of Object.entries(g.inputs)) {
    const n = numel(g.nodes[id]!.shape);
    if (name === 'labels') feeds[name] = Float32Array.from({ length: n }, () => r.int(0, logits[1]! - 1));
    else if (name === 'step') feeds[name] = Float32Array.of(3);
    else feeds[name] = Float32Array.from(r.uniform(n));
  }
  const state = initialState(g.state, seed);
  // Non-zero optimizer state and running statistics exercise every term of the updates.
  for (const s of g.state) if (s.kind !== 'param') state.set(s.name, Float32Array.from(r.uniform(numel(s.shape), 0.1, 1)));
  return { feeds, state };
}

/** What a step computes, by name: outputs, then updates. */
export function runGraph(g: Graph, feeds: Record<string, Float32Array>, state: Map<string, Float32Array>, seed = 0): Map<string, Float32Array> {
  const values = executeGraph(g, feeds, state, { seed });
  const out = new Map<string, Float32Array>();
  for (const [k, id] of Object.entries(g.outputs)) out.set(k, values[id] as Float32Array);
  for (const [k, id] of Object.entries(g.updates)) out.set(`update ${k}`, values[id] as Float32Array);
  for (const [k, id] of Object.entries(g.grads)) out.set(`grad ${k}`, values[id] as Float32Array);
  return out;
}

/** What a Program's step computes, by the same names as runGraph. */
export function runProgram(p: Program, feeds: Record<string, Float32Array>, state: Map<string, Float32Array>, seed = 0): Map<string, Float32Array> {
  const arena = newArena(p);
  for (const s of p.state) sliceOf(arena, s.slice).set(state.get(s.name)!);
  for (const [name, s] of Object.entries(p.inputs)) sliceOf(arena, s).set(feeds[name]!);
  executeProgram(p, arena, { seed });
  const out = new Map<string, Float32Array>();
  for (const [k, s] of Object.entries(p.outputs)) out.set(k, Float32Array.from(sliceOf(arena, s)));
  for (const s of p.state) if (s.update !== undefined) out.set(`update ${s.name}`, Float32Array.from(sliceOf(arena, s.slice)));
  for (const [k, s] of Object.entries(p.grads ?? {})) out.set(`grad ${k}`, Float32Array.from(sliceOf(arena, s)));
  return out;
}
