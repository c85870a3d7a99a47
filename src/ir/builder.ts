import './ops/index.ts';
import { KilnError, type SourceLoc } from './errors.ts';
import type { Attrs, Graph, Node, Phase, StateTensor } from './graph.ts';
import { getOp, type GradBuilder } from './op.ts';

/**
 * Appends nodes to a graph, checking each against its op's shape rule as it goes, so a bad
 * shape is reported at the call that made it.
 */
export class GraphBuilder implements GradBuilder {
  readonly nodes: Node[] = [];
  readonly state: StateTensor[] = [];
  phase: Phase = 'forward';
  /** Location stamped on new nodes: the model-file call being traced, or the node being differentiated. */
  loc: SourceLoc | undefined;
  scope: string | undefined;

  constructor(from?: Graph) {
    if (from) {
      this.nodes.push(...from.nodes);
      this.state.push(...from.state);
    }
  }

  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new Error(`no node %${id}`);
    return n;
  }

  op(op: string, inputs: readonly number[], attrs: Attrs = {}): number {
    const def = getOp(op);
    const [min, max] = typeof def.arity === 'number' ? [def.arity, def.arity] : def.arity;
    if (inputs.length < min || inputs.length > max) throw new Error(`${op} takes ${min}..${max} inputs, got ${inputs.length}`);
    let shape;
    try {
      shape = def.shape(inputs.map((i) => this.node(i).shape), attrs);
    } catch (e) {
      throw new KilnError('shape', (e as Error).message, this.loc);
    }
    const id = this.nodes.length;
    this.nodes.push({ id, op, inputs: [...inputs], attrs, shape: [...shape], phase: this.phase, loc: this.loc, scope: this.scope });
    return id;
  }

  constant(value: number): number {
    return this.op('const', [], { value });
  }

  /** Declares a persistent tensor and returns the node that reads it. */
  addState(t: Omit<StateTensor, 'node'>): number {
    if (this.state.some((s) => s.name === t.name)) throw new Error(`persistent tensor ${t.name} declared twice`);
    const node = this.op('param', [], { name: t.name, shape: [...t.shape] });
    this.state.push({ ...t, node });
    return node;
  }
}
