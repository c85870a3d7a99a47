import type { Graph } from '../../ir/graph.ts';
import type { Program } from '../../ir/program.ts';
import type { Target } from '../../ir/target.ts';
import { batchOf, exampleSizeOf, scalarFeeds, type Backend, type StepResult, type StepScalars, type StepSource } from '../backend.ts';
import { executeGraph } from './execute.ts';
import { executeProgram, newArena, sliceOf } from './program.ts';
import { REFERENCE_TARGET } from './target.ts';

export interface ReferenceOptions {
  /**
   * Graph -> Program for REFERENCE_TARGET (src/passes/compile.ts: compileProgram). With it the
   * backend runs each step's planned Program kernel by kernel over one arena; without it, the
   * graph node by node.
   */
  lower?: (g: Graph, target: Target) => Program;
}

/**
 * The oracle backend: plain loops over Float32Array. It runs either the unfused graph (each node
 * its own array) or the compiled Program (every kernel on one arena, as the other backends do),
 * so the two can be compared step by step. `steps` should be memoized.
 */
export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly stateShapes: ReadonlyMap<string, readonly number[]>;
  private readonly state = new Map<string, Float32Array>();
  private readonly programs = new WeakMap<Graph, { program: Program; arena: Float32Array }>();
  private readonly exampleSize: number;

  constructor(
    private readonly steps: StepSource,
    initial: ReadonlyMap<string, Float32Array>,
    batchSize: number,
    private readonly seed: number,
    private readonly opts: ReferenceOptions = {},
  ) {
    const first = steps.train(batchSize);
    this.stateShapes = new Map(first.state.map((s) => [s.name, s.shape]));
    this.exampleSize = exampleSizeOf(first);
    for (const [name, data] of initial) this.setState(name, data);
  }

  setState(name: string, data: Float32Array): void {
    const shape = this.stateShapes.get(name);
    if (!shape) throw new Error(`no persistent tensor named ${name}`);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${name}: expected ${shape.reduce((a, b) => a * b, 1)} values, got ${data.length}`);
    this.state.set(name, Float32Array.from(data));
  }

  getState(name: string): Float32Array {
    const t = this.state.get(name);
    if (!t) throw new Error(`no persistent tensor named ${name}`);
    return Float32Array.from(t);
  }

  private run(g: Graph, x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): StepResult {
    const feeds = { x, labels, ...Object.fromEntries(scalarFeeds(Object.keys(g.inputs), step, scalars).map(([n, v]) => [n, Float32Array.of(v)])) };
    if (this.opts.lower) return this.runProgram(g, this.opts.lower, feeds);
    const values = executeGraph(g, feeds, this.state, { seed: this.seed });
    for (const [name, node] of Object.entries(g.updates)) this.state.set(name, values[node] as Float32Array);
    return { loss: values[g.outputs.loss!]![0]!, logits: values[g.outputs.logits!] as Float32Array };
  }

  prepare(kind: 'train' | 'eval', batch: number): void {
    if (this.opts.lower) this.programFor(this.steps[kind](batch), this.opts.lower);
  }

  private programFor(g: Graph, lower: NonNullable<ReferenceOptions['lower']>): { program: Program; arena: Float32Array } {
    let compiled = this.programs.get(g);
    if (!compiled) {
      const program = lower(g, REFERENCE_TARGET);
      this.programs.set(g, (compiled = { program, arena: newArena(program) }));
    }
    return compiled;
  }

  /** One step of the graph's Program: state and inputs into their slices, run, new state out. */
  private runProgram(g: Graph, lower: NonNullable<ReferenceOptions['lower']>, feeds: Record<string, Float32Array>): StepResult {
    const { program: p, arena } = this.programFor(g, lower);
    for (const s of p.state) sliceOf(arena, s.slice).set(this.state.get(s.name)!);
    for (const [name, s] of Object.entries(p.inputs)) sliceOf(arena, s).set(feeds[name]!);
    executeProgram(p, arena, { seed: this.seed });
    for (const s of p.state) if (s.update !== undefined) this.state.set(s.name, Float32Array.from(sliceOf(arena, s.slice)));
    return { loss: sliceOf(arena, p.outputs.loss!)[0]!, logits: Float32Array.from(sliceOf(arena, p.outputs.logits!)) };
  }

  trainStep(x: Float32Array, labels: Float32Array, step: number, scalars?: StepScalars): StepResult {
    return this.run(this.steps.train(batchOf(x, this.exampleSize)), x, labels, step, scalars);
  }

  evalStep(x: Float32Array, labels: Float32Array): StepResult {
    return this.run(this.steps.eval(batchOf(x, this.exampleSize)), x, labels, 0);
  }

  dispose(): void {
    this.state.clear();
  }
}
