import type { Node } from '../../ir/graph.ts';
import { num } from '../../ir/op.ts';
import { fmtShape, numel } from '../../ir/shape.ts';
import { referenceKernels, type Arr, type KernelContext } from './kernels/index.ts';

export interface ExecuteOptions {
  /** Element type of every buffer; f32 (default) is what the other backends compute in. */
  dtype?: 'f32' | 'f64';
  /** Keys the counter-based RNG (dropout masks). Default 0. */
  seed?: number;
}

/**
 * Runs every node in order. feeds: per-step inputs by name (x, labels, step — matching `input`
 * nodes' attrs.name); state: persistent tensors by name (matching `param` nodes' attrs.name).
 * Returns every node's value, indexed by node id.
 */
export function executeGraph(
  graph: { nodes: readonly Node[] },
  feeds: Record<string, ArrayLike<number>>,
  state: ReadonlyMap<string, ArrayLike<number>> | Record<string, ArrayLike<number>>,
  opts: ExecuteOptions = {},
): Arr[] {
  const f64 = opts.dtype === 'f64';
  const ctx: KernelContext = { seed: opts.seed ?? 0 };
  const stateOf = (name: string): ArrayLike<number> | undefined =>
    state instanceof Map ? state.get(name) : Object.hasOwn(state, name) ? (state as Record<string, ArrayLike<number>>)[name] : undefined;
  const feedOf = (name: string): ArrayLike<number> | undefined => (Object.hasOwn(feeds, name) ? feeds[name] : undefined);

  const values: Arr[] = [];
  for (const node of graph.nodes) {
    const out = f64 ? new Float64Array(numel(node.shape)) : new Float32Array(numel(node.shape));
    if (node.op === 'const') {
      out[0] = num(node.attrs, 'value');
    } else if (node.op === 'input') {
      copyIn(out, feedOf(leafName(node)), `feed '${leafName(node)}'`, node);
    } else if (node.op === 'param') {
      copyIn(out, stateOf(leafName(node)), `state tensor '${leafName(node)}'`, node);
    } else {
      const kernel = referenceKernels[node.op];
      if (!kernel) throw new Error(`reference backend: no kernel for op '${node.op}' (node %${node.id})`);
      const ins = node.inputs.map((i) => {
        const v = values[i];
        if (!v) throw new Error(`reference backend: node %${node.id} reads %${i}, which has not run (graph not in topological order)`);
        return v;
      });
      kernel(out, ins, node, node.inputs.map((i) => graph.nodes[i]!.shape), ctx);
    }
    values[node.id] = out;
  }
  return values;
}

function leafName(node: Node): string {
  const name = node.attrs.name;
  if (typeof name !== 'string') throw new Error(`reference backend: ${node.op} node %${node.id} has no name`);
  return name;
}

function copyIn(out: Arr, src: ArrayLike<number> | undefined, what: string, node: Node): void {
  const expected = `${out.length} values (shape ${fmtShape(node.shape)})`;
  if (src === undefined) throw new Error(`missing ${what}: expected ${expected}`);
  if (src.length !== out.length) throw new Error(`${what} has ${src.length} values, expected ${expected}`);
  for (let i = 0; i < out.length; i++) out[i] = src[i]!;
}
