import { KERNEL_KINDS } from '../kernels.ts';
import { lifetimes } from '../lifetimes.ts';
import type { Attrs } from '../graph.ts';
import type { Expr, MemoryReport, Program } from '../program.ts';
import type { Shape } from '../shape.ts';
import { humanCount } from './summary.ts';

/** A kernel as dumps show it; slices have an offset once memory is planned. */
export interface KernelRow {
  readonly name: string;
  readonly kind: string;
  readonly ops: readonly string[];
  readonly attrs: Attrs;
  readonly inputs: readonly SliceRow[];
  readonly outputs: readonly SliceRow[];
  readonly expr?: Expr;
}

export interface SliceRow {
  readonly value: string;
  readonly shape: Shape;
  readonly bytes: number;
  readonly offset?: number;
}

export const humanBytes = (n: number) => `${humanCount(n)}B`;

function slice(s: SliceRow): string {
  return `${s.value}[${s.shape.join(',')}]${s.offset === undefined ? '' : `@${s.offset}`} ${humanBytes(s.bytes)}`;
}

/** One line: name, kind, the graph ops it computes, then inputs -> outputs (and, for kinds that say, what it keeps of its intermediates). */
export function kernelLine(k: KernelRow): string {
  const memory = (KERNEL_KINDS as Readonly<Record<string, { memory?: string }>>)[k.kind]?.memory;
  return `${k.name.padEnd(28)} ${k.kind}(${k.ops.join(' ')})  ${k.inputs.map(slice).join(', ')} -> ${k.outputs.map(slice).join(', ')}${memory ? `  [${memory}]` : ''}`;
}

/** The three numbers of a plan, and what planning saved. */
export function memoryLines(m: MemoryReport): string[] {
  const saved = 1 - m.arenaBytes / m.naiveBytes;
  return [
    `memory:  arena ${humanBytes(m.arenaBytes)} (${m.arenaBytes} bytes); naive ${humanBytes(m.naiveBytes)}: planning saves ${(100 * saved).toFixed(0)}%`,
    `         lower bound ${humanBytes(m.lowerBoundBytes)} (peak live bytes): the arena is ${(m.arenaBytes / m.lowerBoundBytes).toFixed(3)}x the bound`,
  ];
}

export function kernelJson(k: KernelRow): object {
  return { name: k.name, kind: k.kind, ops: k.ops, attrs: k.attrs, inputs: k.inputs, outputs: k.outputs, ...(k.expr ? { expr: k.expr } : {}) };
}

const rows = (p: Program): KernelRow[] => p.kernels.map((k) => ({ ...k, inputs: k.inputs.map(row), outputs: k.outputs.map(row) }));
const row = (s: { value?: string; shape: Shape; bytes: number; offset: number }): SliceRow => ({ value: s.value ?? '?', shape: s.shape, bytes: s.bytes, offset: s.offset });

/** One line per kernel, then the memory summary. */
export function printProgramText(p: Program): string {
  const persistent = p.state.reduce((a, s) => a + s.slice.bytes, 0) + Object.values(p.grads ?? {}).reduce((a, s) => a + s.bytes, 0);
  return [
    `# planned ${p.stage} step, batch ${p.batchSize}: ${p.kernels.length} kernels`,
    ...rows(p).map(kernelLine),
    '',
    ...memoryLines(p.memory),
    `         persistent: ${p.state.length} tensors and ${Object.keys(p.grads ?? {}).length} gradients, ${humanBytes(persistent)}`,
  ].join('\n') + '\n';
}

/** The JSON dump of `kiln ir --stage planned`: kernels with their slices, the tables, and the memory report. */
export function printProgramJson(p: Program): string {
  const s = (x: { value?: string; shape: Shape; bytes: number; offset: number }) => row(x);
  const table = (r: Readonly<Record<string, { value?: string; shape: Shape; bytes: number; offset: number }>>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, s(v)]));
  return JSON.stringify({
    stage: 'planned',
    step: p.stage,
    batchSize: p.batchSize,
    kernels: rows(p).map(kernelJson),
    state: p.state.map((t) => ({ name: t.name, kind: t.kind, ...s(t.slice), ...(t.update ? { update: t.update } : {}) })),
    inputs: table(p.inputs),
    outputs: table(p.outputs),
    grads: table(p.grads ?? {}),
    constants: p.constants.map((c) => ({ ...s(c.slice), constant: c.value })),
    memory: p.memory,
  }, null, 2) + '\n';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Buffer lifetimes over the schedule: kernels left to right (with a column before and after the
 * step), arena offsets top to bottom, one box per value from its write to its last read.
 * Persistent tensors are grey, per-step inputs blue, kernel results coloured by kernel.
 */
export function printProgramSvg(p: Program): string {
  const K = p.kernels.length;
  const [left, top, width, height, bottom] = [90, 40, 900, 520, 150];
  const col = width / (K + 2);
  const scale = height / Math.max(1, p.memory.arenaBytes);
  const x = (t: number) => left + (t + 1) * col;
  const boxes = lifetimes(p).map((l) => {
    const fill = l.role === 'persistent' ? '#cbd5e1' : l.role === 'input' ? '#93c5fd' : `hsl(${(l.write * 67) % 360}, 70%, 70%)`;
    const tip = `${l.name}: ${l.bytes} bytes at ${l.offset}, written ${l.write < 0 ? 'before the step' : `by ${p.kernels[l.write]!.name}`}, last read ${l.lastRead >= K ? 'after the step' : `by ${p.kernels[l.lastRead]!.name}`}`;
    return `<rect x="${x(l.write).toFixed(1)}" y="${(top + l.offset * scale).toFixed(1)}" width="${((l.lastRead - l.write + 1) * col).toFixed(1)}" height="${Math.max(1, l.bytes * scale).toFixed(1)}" fill="${fill}" stroke="#334155" stroke-width="0.5"><title>${esc(tip)}</title></rect>`;
  });
  const labels = [
    ...['before', ...p.kernels.map((k) => k.name), 'after'].map((n, i) => `<text transform="translate(${(x(i - 1) + col / 2).toFixed(1)},${top + height + 8}) rotate(60)" font-size="10">${esc(n)}</text>`),
    ...[0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${left - 6}" y="${(top + f * height + 4).toFixed(1)}" font-size="10" text-anchor="end">${humanBytes(Math.round(f * p.memory.arenaBytes))}</text>`),
  ];
  const m = p.memory;
  const title = `${p.stage} step, batch ${p.batchSize}: arena ${humanBytes(m.arenaBytes)}, naive ${humanBytes(m.naiveBytes)}, lower bound ${humanBytes(m.lowerBoundBytes)}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${top + height + bottom}" font-family="Helvetica, Arial, sans-serif">`,
    `<text x="${left}" y="22" font-size="14">${esc(title)}</text>`,
    `<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="none" stroke="#94a3b8"/>`,
    ...boxes,
    ...labels,
    '</svg>',
  ].join('\n') + '\n';
}
