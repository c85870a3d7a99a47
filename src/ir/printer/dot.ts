import type { Graph, Phase } from '../graph.ts';
import { fmtShape } from '../shape.ts';

const style: Record<Phase, { label: string; color: string }> = {
  forward: { label: 'forward', color: '#dbeafe' },
  backward: { label: 'backward', color: '#fee2e2' },
  update: { label: 'optimizer update', color: '#dcfce7' },
};

/** Graphviz: one cluster per phase so forward, backward and update are visibly apart. */
export function printDot(g: Graph): string {
  const lines = [`digraph "${g.stage}" {`, '  rankdir=TB;', '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];'];
  const leaf = (op: string) => op === 'input' || op === 'param' || op === 'const';
  const label = (id: number) => {
    const n = g.nodes[id]!;
    const name = leaf(n.op) ? String(n.attrs.name ?? n.attrs.value) : n.op;
    return `${name}\\n${fmtShape(n.shape)}${n.scope ? `\\n${n.scope}` : ''}`;
  };
  for (const phase of Object.keys(style) as Phase[]) {
    const members = g.nodes.filter((n) => n.phase === phase && !leaf(n.op));
    if (!members.length) continue;
    lines.push(`  subgraph cluster_${phase} {`, `    label="${style[phase].label}"; style=filled; color="${style[phase].color}";`);
    for (const n of members) lines.push(`    n${n.id} [label="${label(n.id)}", fillcolor=white];`);
    lines.push('  }');
  }
  for (const n of g.nodes.filter((m) => leaf(m.op))) {
    lines.push(`  n${n.id} [label="${label(n.id)}", shape=ellipse, fillcolor="${n.op === 'param' ? '#fef9c3' : '#f3f4f6'}"];`);
  }
  for (const n of g.nodes) for (const i of n.inputs) lines.push(`  n${i} -> n${n.id};`);
  for (const [name, id] of Object.entries(g.updates)) lines.push(`  n${id} -> n${g.state.find((s) => s.name === name)!.node} [style=dashed, constraint=false, color="#16a34a", tooltip="writes ${name}"];`);
  lines.push('}');
  return lines.join('\n') + '\n';
}
