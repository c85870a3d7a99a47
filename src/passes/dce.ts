import type { Graph, Node } from '../ir/graph.ts';

/**
 * Removes nodes nothing reads, renumbering the rest. Roots: outputs, updates, gradients, and
 * every input and persistent-tensor leaf (a step's interface stays fixed even when unused).
 * Autodiff relies on this: gradient rules build every input's gradient, and the ones that flow
 * nowhere (such as the image's) disappear here.
 */
export function eliminateDeadCode(g: Graph): Graph {
  const live = new Array<boolean>(g.nodes.length).fill(false);
  const roots = [...Object.values(g.outputs), ...Object.values(g.updates), ...Object.values(g.grads), ...Object.values(g.inputs), ...g.state.map((s) => s.node)];
  for (const r of roots) live[r] = true;
  for (let id = g.nodes.length - 1; id >= 0; id--) {
    if (live[id]) for (const i of g.nodes[id]!.inputs) live[i] = true;
  }
  const remap = new Array<number>(g.nodes.length).fill(-1);
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!live[n.id]) continue;
    remap[n.id] = nodes.length;
    nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => remap[i]!) });
  }
  const mapRecord = (r: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, remap[v]!]));
  return {
    ...g,
    nodes,
    state: g.state.map((s) => ({ ...s, node: remap[s.node]! })),
    inputs: mapRecord(g.inputs),
    outputs: mapRecord(g.outputs),
    updates: mapRecord(g.updates),
    grads: mapRecord(g.grads),
  };
}
