import type { AttrValue, Graph, Node } from '../graph.ts';
import { formatLoc } from '../errors.ts';
import { fmtShape } from '../shape.ts';
import { humanCount, summarize } from './summary.ts';

function attr(v: AttrValue): string {
  return Array.isArray(v) ? `[${v.join(',')}]` : String(v);
}

function nodeLine(n: Node): string {
  const attrs = Object.entries(n.attrs).map(([k, v]) => `${k}=${attr(v)}`).join(' ');
  const call = `${n.op}(${n.inputs.map((i) => `%${i}`).join(', ')})${attrs ? ` ${attrs}` : ''}`;
  const where = [formatLoc(n.loc), n.scope].filter(Boolean).join(' ');
  return `%${n.id}`.padStart(6) + ` = ${call.padEnd(60)} ${fmtShape(n.shape).padEnd(18)}${where ? ` # ${where}` : ''}`;
}

/** One line per node, grouped by phase, then what a step reads, writes and costs. */
export function printText(g: Graph, title = `${g.stage} graph`): string {
  const out: string[] = [`# ${title}, batch ${g.batchSize}`];
  let phase = '';
  for (const n of g.nodes) {
    if (n.phase !== phase) {
      phase = n.phase;
      out.push(`\n# ${phase}`);
    }
    out.push(nodeLine(n));
  }
  const io = (r: Readonly<Record<string, number>>) => Object.entries(r).map(([k, v]) => `${k}=%${v}`).join(' ') || '-';
  const s = summarize(g);
  out.push(
    '',
    `inputs:  ${io(g.inputs)}`,
    `outputs: ${io(g.outputs)}`,
    `updates: ${Object.keys(g.updates).length} persistent tensors written`,
    `nodes:   ${g.nodes.length} (${Object.entries(s.opCounts).sort((a, b) => b[1] - a[1]).map(([op, c]) => `${op} ${c}`).join(', ')})`,
    `params:  ${s.paramCount.toLocaleString('en-US')} in ${g.state.filter((t) => t.kind === 'param').length} tensors`,
    `FLOPs:   ${humanCount(s.flopsPerStep)} per step (${humanCount(s.flopsPerStep / g.batchSize)} per example)`,
  );
  return out.join('\n') + '\n';
}
