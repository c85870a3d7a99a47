import type { Graph } from '../../ir/graph.ts';
import type { Backend, StepResult, StepSource } from '../backend.ts';
import { executeGraph } from './execute.ts';

/** The oracle backend: runs each step's graph node by node with the reference kernels. `steps` should be memoized. */
export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly stateShapes: ReadonlyMap<string, readonly number[]>;
  private readonly state = new Map<string, Float32Array>();

  constructor(
    private readonly steps: StepSource,
    initial: ReadonlyMap<string, Float32Array>,
    batchSize: number,
    private readonly seed: number,
  ) {
    this.stateShapes = new Map(steps.train(batchSize).state.map((s) => [s.name, s.shape]));
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

  private run(g: Graph, x: Float32Array, labels: Float32Array, step: number): StepResult {
    const values = executeGraph(g, { x, labels, step: [step] }, this.state, { seed: this.seed });
    for (const [name, node] of Object.entries(g.updates)) this.state.set(name, values[node] as Float32Array);
    return { loss: values[g.outputs.loss!]![0]!, logits: values[g.outputs.logits!] as Float32Array };
  }

  trainStep(x: Float32Array, labels: Float32Array, step: number): StepResult {
    return this.run(this.steps.train(labels.length), x, labels, step);
  }

  evalStep(x: Float32Array, labels: Float32Array): StepResult {
    return this.run(this.steps.eval(labels.length), x, labels, 0);
  }

  dispose(): void {
    this.state.clear();
  }
}
