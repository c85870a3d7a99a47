import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { trace } from '../../src/frontend/trace.ts';
import type { Module } from '../../src/frontend/module.ts';
import { nn } from '../../src/frontend/api.ts';
import { resolveOptimizer, type OptimizerOptions } from '../../src/frontend/training-options.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { numel } from '../../src/ir/shape.ts';
import type { Program } from '../../src/ir/program.ts';
import { verifyProgram } from '../../src/ir/verify-program.ts';
import { executeGraph } from '../../src/runtime/reference/execute.ts';
import { executeProgram, newArena, sliceOf } from '../../src/runtime/reference/program.ts';
import { initialState } from '../../src/runtime/init.ts';
import { REFERENCE_TARGET } from '../../src/runtime/reference/target.ts';
import { buildEvalGraph, buildTrainGraph } from '../../src/passes/train-graph.ts';
import { rng } from '../runtime/reference/helpers.ts';

export const SAMPLES = ['simple-cnn', 'lenet', 'mlp'] as const;
/**
 * Test models of patterns the samples lack, run by the whole-step suites beside them: resnet-tiny
 * (residual fan-out, stride-2 and 1×1 projection convolutions without bias, batch norm after
 * each, global average pooling, Nesterov SGD under a one-cycle schedule); attention-tiny (causal
 * self-attention: split, heads by transpose, batched matmul, a tril mask, softmax over the last dim).
 */
export const FIXTURE_MODELS = { 'resnet-tiny': 'test/fixtures/models/resnet-tiny.ts', 'attention-tiny': 'test/fixtures/models/attention-tiny.ts', 'bn-pools': 'test/fixtures/models/bn-pools.ts' } as const;
export type Sample = (typeof SAMPLES)[number] | keyof typeof FIXTURE_MODELS;
export const MODELS: readonly Sample[] = [...SAMPLES, ...(Object.keys(FIXTURE_MODELS) as (keyof typeof FIXTURE_MODELS)[])];

/** A sample or fixture model, loaded (lint skipped: these tests are about passes). */
export function sampleModel(name: Sample): ReturnType<typeof loadModelFile> {
  return loadModelFile(name in FIXTURE_MODELS ? FIXTURE_MODELS[name as keyof typeof FIXTURE_MODELS] : `samples/${name}.ts`, { lint: false });
}

/** The train or eval graph of a sample or fixture model. */
export async function sampleGraph(name: Sample, stage: 'train' | 'eval', batchSize = 8): Promise<Graph> {
  const m = await sampleModel(name);
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

/** What a Program's step computes on the reference backend, by the same names as runGraph. Every Program run here is verified first. */
export function runProgram(p: Program, feeds: Record<string, Float32Array>, state: Map<string, Float32Array>, seed = 0): Map<string, Float32Array> {
  const problems = verifyProgram(p, REFERENCE_TARGET);
  if (problems.length) throw new Error(`unsound Program:\n${problems.join('\n')}`);
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

/**
 * A random small Sequential model over [C, H, W] images: conv blocks (conv, maybe batch norm,
 * maybe ReLU, maybe max or average pooling, maybe dropout), then linear layers (maybe batch norm,
 * ReLU, dropout), then a classifier. Returns its description too, for failure messages.
 */
export function randomModel(seed: number): { make: () => Module; input: number[]; describe: string } {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[r.int(0, xs.length - 1)]!;
  let [c, h, w] = [r.int(1, 3), r.int(6, 10), r.int(6, 10)];
  const input = [c, h, w];
  const steps: ((n: typeof nn) => Module)[] = [];
  const words: string[] = [];
  for (let i = r.int(0, 2); i > 0; i--) {
    const [out, pad, stride] = [r.int(2, 4), r.int(0, 1), pick([1, 1, 2])];
    const k = Math.min(pick([1, 2, 3]), h + 2 * pad, w + 2 * pad);
    const c0 = c;
    steps.push((n) => new n.Conv2d(c0, out, k, { padding: pad, stride }));
    [c, h, w] = [out, Math.floor((h + 2 * pad - k) / stride) + 1, Math.floor((w + 2 * pad - k) / stride) + 1];
    words.push(`conv${k}x${k}/${stride}p${pad}→${out}`);
    if (r.next() < 0.3) steps.push((n) => new n.BatchNorm2d(out)), words.push('bn');
    if (r.next() < 0.7) steps.push((n) => new n.ReLU()), words.push('relu');
    if (h >= 2 && w >= 2 && r.next() < 0.6) {
      const max = r.next() < 0.6;
      const [pk, ps] = pick([[2, 2], [2, 1]] as const);
      steps.push((n) => (max ? new n.MaxPool2d(pk, ps) : new n.AvgPool2d(pk, ps)));
      [h, w] = [Math.floor((h - pk) / ps) + 1, Math.floor((w - pk) / ps) + 1];
      words.push(`${max ? 'max' : 'avg'}${pk}/${ps}`);
    }
    if (r.next() < 0.2) steps.push((n) => new n.Dropout(0.3)), words.push('drop');
  }
  steps.push((n) => new n.Flatten());
  let features = c * h * w;
  for (let i = r.int(0, 2); i > 0; i--) {
    const [f0, out] = [features, r.int(3, 12)];
    steps.push((n) => new n.Linear(f0, out));
    words.push(`linear→${out}`);
    if (r.next() < 0.3) steps.push((n) => new n.BatchNorm1d(out)), words.push('bn');
    if (r.next() < 0.7) steps.push((n) => new n.ReLU()), words.push('relu');
    if (r.next() < 0.3) steps.push((n) => new n.Dropout(0.25)), words.push('drop');
    features = out;
  }
  const classes = r.int(2, 5);
  const f0 = features;
  steps.push((n) => new n.Linear(f0, classes));
  words.push(`linear→${classes}`);
  return { make: () => new nn.Sequential(...steps.map((s) => s(nn))), input, describe: `[${input}] ${words.join(' ')}` };
}
