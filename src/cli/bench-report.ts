/**
 * What `kiln bench` writes: the terminal table, the JSON, the figures section of BENCHMARKS.md and
 * the SVG bar chart. Pure functions of the results, so the tests check them without timing anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { writeFileAtomic } from '../runtime/output-file.ts';

/** One measured configuration: a kiln backend at a thread count, or a peer with its settings. */
export interface BenchResult {
  /** The model's class name (SimpleCNN). */
  name: string;
  /** The model file as given. */
  model: string;
  /** kiln, TensorFlow.js, jax-js, PyTorch. */
  system: string;
  /** kiln: the backend (reference, wasm, webgpu); a peer: its device or backend (cpu, wasm). */
  backend: string;
  /** What was set, in words: "2 threads, channels_last", "default". */
  settings: string;
  threads: number;
  batchSize: number;
  /** Median over the measured steps; null when it could not train. */
  /** Images (or tokens, see unit) per second. */
  trainImagesPerSec: number | null;
  /** Slowest and fastest measured step, as images/s. */
  trainSpread: [number, number] | null;
  /** At batch 1000, in evaluation mode (dropout off, batch norm on running statistics). */
  inferImagesPerSec: number | null;
  /** 'tokens' for a language model: training tokens/s, and generation tokens/s (one byte a step at batch 1) for inference. */
  unit?: 'tokens';
  /** Building the step: load, trace, compile, plus the first step's time beyond a steady one. */
  compileSeconds: number | null;
  /** The model's FLOPs per step (counted from kiln's IR) over the median step time. */
  gflops: number | null;
  /** gflops over this machine's measured WebAssembly SIMD peak at the same thread count. */
  peakFraction: number | null;
  kernelsPerStep: number | null;
  dispatchesPerStep: number | null;
  arenaBytes: number | null;
  lowerBoundBytes: number | null;
  /** Training steps measured (after warm-up). */
  steps: number;
  /** What was needed to run it, or why it could not. */
  note?: string;
}

/** How long to measure each configuration: warm-up steps, then up to `steps` within `seconds`. */
export interface Budget {
  warmup: number;
  steps: number;
  seconds: number;
}

/** Per-step statistics of a list of step times (seconds) at `batch` images a step. */
export function stepStats(times: readonly number[], batch: number): { median: number; spread: [number, number] } | null {
  if (times.length === 0) return null;
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: batch / median, spread: [batch / s[s.length - 1]!, batch / s[0]!] };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** This machine's WebAssembly SIMD peak, GFLOP/s, by thread count. */
  simdPeakGflops: Record<string, number>;
  date: string;
  command: string;
}

export interface BenchReport {
  machine: MachineInfo;
  results: BenchResult[];
}

/** The row label: "kiln wasm, 2 threads", "PyTorch cpu, 2 threads, channels_last". */
export function label(r: BenchResult): string {
  return r.system === 'kiln' ? `kiln ${r.backend}${r.threads > 1 ? `, ${r.threads} threads` : ''}` : `${r.system} ${r.backend}, ${r.settings}`;
}

/** The fastest kiln configuration of each model, by training images/s. */
function bestKiln(results: readonly BenchResult[]): Map<string, BenchResult> {
  const best = new Map<string, BenchResult>();
  for (const r of results) {
    if (r.system !== 'kiln' || r.trainImagesPerSec === null) continue;
    const b = best.get(r.name);
    if (!b || r.trainImagesPerSec > b.trainImagesPerSec!) best.set(r.name, r);
  }
  return best;
}

/** kiln's best training images/s over this peer's ("2.5×"), or null for kiln rows and failed runs. */
export function ratio(r: BenchResult, results: readonly BenchResult[]): number | null {
  if (r.system === 'kiln' || r.trainImagesPerSec === null) return null;
  const k = bestKiln(results).get(r.name);
  return k ? k.trainImagesPerSec! / r.trainImagesPerSec : null;
}

const num = (n: number | null, digits = 0) => (n === null ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const sig = (n: number | null) => (n === null ? '—' : n >= 100 ? num(n) : n >= 10 ? num(n, 1) : n.toPrecision(2));

export function bytes(n: number | null): string {
  if (n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return i === 0 ? `${n} B` : `${n.toFixed(n >= 100 ? 0 : 1)} ${units[i]}`;
}

/** The columns, shared by the terminal table and the Markdown one. */
function rows(results: readonly BenchResult[]): { head: string[]; body: string[][]; notes: string[] } {
  const head = ['model', 'configuration', 'compile s', 'train img/s', '±', 'infer img/s', 'GFLOP/s', '% SIMD peak', 'kernels / dispatches', 'arena / lower bound', 'kiln ÷ this'];
  // One number per distinct note: rows that say the same thing share it.
  const notes: string[] = [];
  const body = results.map((r) => {
    let cfg = label(r);
    if (r.note) {
      if (!notes.includes(r.note)) notes.push(r.note);
      cfg += ` [${notes.indexOf(r.note) + 1}]`;
    }
    const t = r.trainImagesPerSec;
    const spread = t !== null && r.trainSpread ? `${Math.round((50 * (r.trainSpread[1] - r.trainSpread[0])) / t)}%` : '—';
    const rt = ratio(r, results);
    const tok = r.unit === 'tokens' ? ' tok' : '';
    return [
      r.name,
      cfg,
      r.compileSeconds === null ? '—' : r.compileSeconds.toFixed(2),
      num(t) + tok,
      spread,
      num(r.inferImagesPerSec) + tok,
      sig(r.gflops),
      r.peakFraction === null ? '—' : `${(100 * r.peakFraction).toFixed(1)}%`,
      r.kernelsPerStep === null ? '—' : `${r.kernelsPerStep} / ${r.dispatchesPerStep ?? r.kernelsPerStep}`,
      r.arenaBytes === null ? '—' : `${bytes(r.arenaBytes)} / ${bytes(r.lowerBoundBytes)}`,
      rt === null ? '' : `${rt.toFixed(2)}×`,
    ];
  });
  return { head, body, notes };
}

const NUMERIC = new Set([2, 3, 4, 5, 6, 7, 10]);

/** The terminal table: aligned columns, numbers right-aligned, notes numbered below. */
export function formatTable(results: readonly BenchResult[]): string {
  const { head, body, notes } = rows(results);
  const width = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((s, c) => (NUMERIC.has(c) ? s.padStart(width[c]!) : s.padEnd(width[c]!))).join('  ').trimEnd();
  const out = [line(head), width.map((w) => '─'.repeat(w)).join('  ')];
  let last = '';
  for (const r of body) {
    if (last && r[0] !== last) out.push('');
    last = r[0]!;
    out.push(line(r));
  }
  if (notes.length) out.push('', ...notes.map((n, i) => `[${i + 1}] ${n}`));
  return out.join('\n') + '\n';
}

const mdEscape = (s: string) => s.replace(/\|/g, '\\|');

export function formatMachine(m: MachineInfo): string {
  const peaks = Object.entries(m.simdPeakGflops).map(([t, g]) => `${g.toFixed(1)} GFLOP/s on ${t} thread${t === '1' ? '' : 's'}`).join(', ');
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}; Node ${m.node}; WebAssembly SIMD peak (f32x4 mul+add) ${peaks}`;
}

/** The figures section of BENCHMARKS.md (between the markers): command, machine, table, notes. */
export function formatMarkdown(report: BenchReport, chart?: string): string {
  const { head, body, notes } = rows(report.results);
  const m = report.machine;
  return [
    `Measured ${m.date} with \`${m.command}\` on ${formatMachine(m)}.`,
    '',
    'Training images/s is the median over the measured steps after warm-up (2 steps and at least 1 s) at the model\'s batch size (± is half the spread between',
    'the slowest and fastest step, relative to the median); inference is at batch 1000. A language model\'s figures are tokens (`tok`): training',
    'tokens/s at its batch of windows, and generation tokens/s for inference (one new byte per step at batch 1). GFLOP/s counts the FLOPs of kiln\'s IR',
    'for every row, so rows of one model compare directly. These are medians on a shared 2-core machine: other work on it',
    'moves them by several percent.',
    '',
    `| ${head.map(mdEscape).join(' | ')} |`,
    `|${head.map((_, c) => (NUMERIC.has(c) ? '---:' : '---')).join('|')}|`,
    ...body.map((r) => `| ${r.map(mdEscape).join(' | ')} |`),
    ...(notes.length ? ['', ...notes.map((n, i) => `${i + 1}. ${n}`)] : []),
    ...(chart ? ['', `![Training images/s per configuration](${chart})`] : []),
  ].join('\n');
}

export const MARK_START = '<!-- bench:start -->';
export const MARK_END = '<!-- bench:end -->';

/**
 * Replaces what lies between the markers in `text` with `section`; a file without them gets a
 * "Figures" section with the markers at its end. Everything else is kept as it was.
 */
export function rewriteFigures(text: string, section: string): string {
  const block = `${MARK_START}\n${section}\n${MARK_END}`;
  const a = text.indexOf(MARK_START);
  const b = text.indexOf(MARK_END);
  if (a >= 0 && b > a) return text.slice(0, a) + block + text.slice(b + MARK_END.length);
  return `${text.trimEnd()}${text.trim() ? '\n\n' : ''}## Figures (\`npm run bench\`)\n\n${block}\n`;
}

/** `chart`: the SVG written in the same run, linked relative to the Markdown file. */
export function writeMarkdown(file: string, report: BenchReport, chart?: string): void {
  const before = existsSync(file) ? readFileSync(file, 'utf8') : '# kiln benchmarks\n';
  const link = chart === undefined ? undefined : relative(dirname(resolve(file)), resolve(chart)).split(sep).join('/');
  writeFileAtomic(file, rewriteFigures(before, formatMarkdown(report, link)), 'Markdown report');
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const COLORS: Record<string, string> = { kiln: '#d9480f', PyTorch: '#5c7cfa', 'TensorFlow.js': '#f59f00', 'jax-js': '#37b24d' };

/**
 * Training images/s of every result as horizontal bars, grouped by model, on a log scale (the
 * reference backend and the fastest peer are two or three orders of magnitude apart). One
 * `rect.bar` per result; a result that did not train gets an empty bar and says why in its label.
 */
export function formatSvg(report: BenchReport): string {
  const results = report.results;
  // About 6.5 px per character of 12 px sans-serif: the longest label fits.
  const labelW = Math.max(200, Math.ceil(6.5 * Math.max(0, ...results.map((r) => label(r).length))) + 16);
  const plotW = 420;
  const barH = 16;
  const gap = 4;
  const groupGap = 26;
  const top = 40;
  const values = results.map((r) => r.trainImagesPerSec).filter((v): v is number => v !== null && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...values, 10))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 100))));
  const x = (v: number) => (plotW * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const parts: string[] = [];
  let y = top;
  let last = '';
  for (const r of results) {
    if (r.name !== last) {
      if (last) y += groupGap - gap;
      parts.push(`<text x="8" y="${y + 11}" font-weight="bold">${xml(r.name)}</text>`);
      y += barH + gap;
      last = r.name;
    }
    const v = r.trainImagesPerSec;
    const w = v !== null && v > 0 ? Math.max(1, x(v)) : 0;
    const color = Object.entries(COLORS).find(([k]) => r.system.startsWith(k))?.[1] ?? '#868e96';
    parts.push(`<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${xml(label(r))}</text>`);
    parts.push(`<rect class="bar" x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"><title>${xml(`${r.name}: ${label(r)}: ${v === null ? 'did not train' : `${Math.round(v)} images/s`}`)}</title></rect>`);
    parts.push(`<text x="${labelW + w + 4}" y="${y + 12}">${v === null ? 'did not train' : Math.round(v).toLocaleString('en-US')}</text>`);
    y += barH + gap;
  }
  const height = y + 30;
  const width = labelW + plotW + 90;
  const ticks: string[] = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) {
    const tx = labelW + x(t);
    ticks.push(`<line x1="${tx}" y1="${top - 6}" x2="${tx}" y2="${y}" stroke="#dee2e6"/><text x="${tx}" y="${y + 16}" text-anchor="middle" fill="#495057">${t.toLocaleString('en-US')}</text>`);
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="20" font-size="14" font-weight="bold">Training images/s (log scale), ${xml(report.machine.cpu)}, ${report.machine.cores} cores</text>`,
    ...ticks,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
