import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSvg, formatTable, MARK_END, MARK_START, ratio, rewriteFigures, stepStats, type BenchReport, type BenchResult } from '../../src/cli/bench-report.ts';
import { peakModuleBytes } from '../../src/cli/simd-peak.ts';
import { configFor, peerConfigs, runPeer } from '../../src/cli/bench-peers.ts';
import type { LoadedModel } from '../../src/frontend/loader.ts';
import { kiln, miniMnist } from './helpers.ts';
import { benchKiln, commandLine, modelInfo, Progress } from '../../src/cli/bench.ts';
import { openSession } from '../../src/cli/session.ts';
import type { Backend, StepResult } from '../../src/runtime/backend.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-'));
const data = miniMnist(join(dir, 'mini'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Well-formed XML, checked by hand (no parser among the dependencies): tags nest and close, one root. */
function checkXml(text: string): { tags: string[] } {
  const stack: string[] = [];
  const tags: string[] = [];
  let roots = 0;
  const body = text.replace(/<\?xml[^>]*\?>/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (close) {
      expect(stack.pop(), `closing </${name}>`).toBe(name);
    } else {
      if (stack.length === 0) roots++;
      tags.push(`${name}${m[3]?.includes('class="bar"') ? '.bar' : ''}`);
      if (!self) stack.push(name!);
    }
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  // Nothing but tags and escaped text: no stray '<' or unescaped '&'.
  const text_ = body.replace(/<[^>]*>/g, '');
  expect(text_).not.toMatch(/<|&(?!amp;|lt;|gt;|quot;)/);
  return { tags };
}

const row = (o: Partial<BenchResult>): BenchResult => ({
  name: 'SimpleCNN', model: 'samples/simple-cnn.ts', system: 'kiln', backend: 'reference', settings: 'default', threads: 1, batchSize: 64,
  trainImagesPerSec: 300, trainSpread: [280, 310], inferImagesPerSec: 900, compileSeconds: 0.3, gflops: 0.1, peakFraction: 0.01,
  kernelsPerStep: 40, dispatchesPerStep: 40, arenaBytes: null, lowerBoundBytes: null, steps: 5, ...o,
});
const machine: BenchReport['machine'] = { cpu: 'Test <CPU> & co', cores: 2, memoryGiB: 24, os: 'Linux', node: '20', simdPeakGflops: { '1': 40, '2': 80 }, date: '2026-01-01', command: 'kiln bench' };

describe('bench report', () => {
  const results = [
    row({}),
    row({ backend: 'wasm', threads: 2, trainImagesPerSec: 6000, kernelsPerStep: 7, dispatchesPerStep: 9, arenaBytes: 2 << 20, lowerBoundBytes: 1 << 20 }),
    row({ system: 'PyTorch 1.13', backend: 'eager', settings: '1 thread (default)', trainImagesPerSec: 3000 }),
    row({ system: 'TensorFlow.js', backend: 'wasm', settings: 'as shipped', trainImagesPerSec: null, trainSpread: null, inferImagesPerSec: null, note: 'TF.js wasm has no Conv2DBackpropFilter kernel' }),
    row({ name: 'MLP', model: 'samples/mlp.ts', system: 'jax-js', backend: 'wasm', settings: 'default', trainImagesPerSec: 100 }),
  ];

  it('medians and spreads per step (odd and even counts)', () => {
    expect(stepStats([0.2, 0.1, 0.4], 10)).toEqual({ median: 50, spread: [25, 100] });
    expect(stepStats([0.1, 0.4], 10)!.median).toBeCloseTo(40);
    expect(stepStats([], 10)).toBeNull();
  });

  it('ratios compare the best kiln row of the same model with each peer', () => {
    expect(ratio(results[2]!, results)).toBe(2);
    expect(ratio(results[0]!, results)).toBeNull();
    expect(ratio(results[3]!, results)).toBeNull();
    // No kiln row for MLP.
    expect(ratio(results[4]!, results)).toBeNull();
  });

  it('the table has one line per result, the ratio and numbered notes', () => {
    const t = formatTable(results);
    expect(t).toMatch(/^model\s+configuration\s+compile s\s+train img\/s/);
    expect(t).toMatch(/PyTorch 1\.13 eager, 1 thread \(default\)\s.*2\.00×/);
    expect(t).toMatch(/kiln wasm, 2 threads\s.*7 \/ 9\s+2\.0 MiB \/ 1\.0 MiB/);
    expect(t).toMatch(/TensorFlow\.js wasm, as shipped \[1\]/);
    expect(t).toContain('[1] TF.js wasm has no Conv2DBackpropFilter kernel');
  });

  it('the SVG is well-formed XML with one bar per result, failed runs included', () => {
    const svg = formatSvg({ machine, results });
    const { tags } = checkXml(svg);
    expect(tags[0]).toBe('svg');
    expect(tags.filter((t) => t === 'rect.bar')).toHaveLength(results.length);
    expect(svg).toContain('Test &lt;CPU&gt; &amp; co');
    expect(svg).toContain('did not train');
  });

  it('rewrites only the figures between the markers, and adds them where missing', () => {
    const doc = `# Benchmarks\n\n## WebAssembly kernels\n\nkeep me\n\n## Figures\n\n${MARK_START}\nold figures\n${MARK_END}\n\n## Notes\n\nkeep me too\n`;
    const out = rewriteFigures(doc, 'NEW');
    expect(out).toBe(doc.replace('old figures', 'NEW'));
    expect(rewriteFigures(out, 'NEWER')).toBe(doc.replace('old figures', 'NEWER'));
    const added = rewriteFigures('# Benchmarks\n\nintro\n', 'X');
    expect(added).toMatch(/^# Benchmarks\n\nintro\n\n## Figures[^\n]*\n\n<!-- bench:start -->\nX\n<!-- bench:end -->\n$/);
  });

  it('peer configurations: defaults first, settings that need a convolution skipped or relabelled on the MLP', () => {
    const all = peerConfigs([1, 2]);
    const labels = (model: string) => all.map((c) => configFor(c, model)).filter((c) => c !== null).map((c) => `${c.system} ${c.backend}, ${c.settings}`);
    const cnn = labels('SimpleCNN');
    expect(cnn).toContain('TensorFlow.js wasm, as shipped');
    expect(cnn).toContain('TensorFlow.js wasm, with a JS Conv2DBackpropFilter');
    expect(cnn.some((l) => /channels_last/.test(l))).toBe(true);
    const mlp = labels('MLP');
    expect(mlp.some((l) => /channels_last|Conv2DBackpropFilter/.test(l))).toBe(false);
    expect(mlp.filter((l) => l === 'TensorFlow.js wasm, as shipped')).toHaveLength(1);
    expect(mlp.some((l) => /^jax-js wasm, 2 threads/.test(l))).toBe(true);
    // Each system's default comes before its tuned settings.
    expect(all.find((c) => c.harness === 'pytorch')!.settings).toMatch(/default/);
  });

  it('a peer that cannot run gives a row saying why', async () => {
    const model = { name: 'NoSuchModel', file: 'x.ts', training: { batchSize: 8, input: [1, 28, 28], optimizer: { type: 'sgd', lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0 } } } as unknown as LoadedModel;
    const z = { x: new Float32Array(8 * 784), labels: new Float32Array(8) };
    const r = await runPeer(peerConfigs([1]).find((c) => c.harness === 'tfjs')!, { model, paramCount: 1, budget: { warmup: 0, steps: 1, seconds: 0 }, dir, train: z, infer: z, perTrainStep: 8, perInferStep: 8, unit: 'images' }, () => {});
    expect(r.trainImagesPerSec).toBeNull();
    expect(r.note).toMatch(/no peer definition of NoSuchModel in bench\/peers\/models\.json/);
  });

  it('names the command as typed: npm run bench with its extra arguments, else kiln bench', () => {
    const env = { npm_lifecycle_event: 'bench', npm_lifecycle_script: 'node bin/kiln.js bench --json bench/results.json --svg x.svg' };
    expect(commandLine(['--json', 'bench/results.json', '--svg', 'x.svg', '--peers'], env)).toBe('npm run bench -- --peers');
    expect(commandLine(['--json', 'bench/results.json', '--svg', 'x.svg'], env)).toBe('npm run bench');
    expect(commandLine(['--peers'], {})).toBe('kiln bench --peers');
  });

  it('the SIMD peak kernel is a valid wasm module', () => {
    expect(WebAssembly.validate(peakModuleBytes())).toBe(true);
    const run = new WebAssembly.Instance(new WebAssembly.Module(peakModuleBytes())).exports.run as (n: number) => number;
    // Every chain converges towards a / (1 - m) = 1; twelve chains summed.
    expect(run(20_000)).toBeCloseTo(12, 2);
  });
});

describe('measuring a backend through what it exposes', () => {
  it('a queued backend is timed a flush of `depth` steps at a time; its Program and thread count are reported', async () => {
    const m = await modelInfo('samples/mlp.ts');
    const flushed: number[] = [];
    const open: typeof openSession = async (path, flags) => {
      const s = await openSession(path, { ...flags, backend: 'reference' });
      const inner = s.backend;
      let queue: (() => StepResult)[] = [];
      const queued = {
        depth: 3,
        queueTrainStep: (x: Float32Array, l: Float32Array, step: number) => void queue.push(() => inner.trainStep(x, l, step)),
        queueEvalStep: (x: Float32Array, l: Float32Array) => void queue.push(() => inner.evalStep(x, l)),
        flush: async () => {
          flushed.push(queue.length);
          const r = queue.map((f) => f());
          queue = [];
          return r;
        },
        sync: async () => {},
      };
      const program = { ...m.program, kernels: m.program.kernels.slice(0, 2), memory: { arenaBytes: 4096, naiveBytes: 8192, lowerBoundBytes: 2048 } };
      s.backend = Object.assign(Object.create(inner) as Backend, { name: 'fake', queued, threads: 2, program, dispatchesPerStep: 1 });
      return s;
    };
    const { result, threaded } = await benchKiln(m, { backend: 'fake', threads: 2, data, budget: { warmup: 2, steps: 2, seconds: 60 }, peak: () => 10, progress: new Progress(), open });
    expect(result.note).toBeUndefined();
    expect(threaded).toBe(true);
    // Warm-up and two measured flushes of three steps, then inference batches queued one at a time.
    const train = flushed.findIndex((n) => n !== 3);
    expect(train).toBeGreaterThanOrEqual(3);
    expect(flushed.slice(train).every((n) => n === 1)).toBe(true);
    expect(result).toMatchObject({ threads: 2, steps: 2, kernelsPerStep: 2, dispatchesPerStep: 1, arenaBytes: 4096, lowerBoundBytes: 2048 });
    expect(result.peakFraction).toBeCloseTo(result.gflops! / 10);
  });
});

describe('kiln bench end to end (reference backend, one step: checks shapes, never speeds)', () => {
  it('prints the table, writes the JSON, rewrites a copy of BENCHMARKS.md and draws the SVG', () => {
    const md = join(dir, 'BENCHMARKS.md');
    const original = existsSync('BENCHMARKS.md') ? readFileSync('BENCHMARKS.md', 'utf8') : `# kiln benchmarks\n\nintro\n\n${MARK_START}\n${MARK_END}\n`;
    writeFileSync(md, original);
    const out = (f: string) => join(dir, f);
    const r = kiln(['bench', '--model', 'samples/mlp.ts', '--backends', 'reference', '--threads', '1', '--steps', '1', '--warmup', '0', '--seconds', '0', '--data', data, '--json', out('b.json'), '--markdown', md, '--svg', out('b.svg')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/WebAssembly SIMD peak \(f32x4 mul\+add\) [\d.]+ GFLOP\/s on 1 thread/);
    expect(r.stdout).toMatch(/^MLP\s+kiln reference \[1\]\s+[\d.]+\s+[\d,]+/m);
    expect(r.stderr).toMatch(/bench: MLP · kiln reference/);

    const j = JSON.parse(readFileSync(out('b.json'), 'utf8'));
    expect(Object.keys(j)).toEqual(['machine', 'results']);
    expect(j.machine).toMatchObject({ cores: expect.any(Number), node: process.versions.node, command: expect.stringContaining('bench --model samples/mlp.ts') });
    expect(j.results).toHaveLength(1);
    const res = j.results[0];
    for (const k of ['name', 'backend', 'threads', 'trainImagesPerSec', 'inferImagesPerSec', 'compileSeconds', 'gflops']) expect(res).toHaveProperty(k);
    expect(res).toMatchObject({ name: 'MLP', backend: 'reference', system: 'kiln', threads: 1, batchSize: 64, steps: 1, kernelsPerStep: expect.any(Number), arenaBytes: expect.any(Number) });
    expect(res.arenaBytes).toBeGreaterThanOrEqual(res.lowerBoundBytes);
    for (const k of ['trainImagesPerSec', 'inferImagesPerSec', 'compileSeconds', 'gflops', 'peakFraction']) expect(res[k]).toBeGreaterThan(0);

    const after = readFileSync(md, 'utf8');
    const [before, rest] = original.split(MARK_START);
    expect(after.startsWith(before!)).toBe(true);
    expect(after.endsWith(rest!.slice(rest!.indexOf(MARK_END)))).toBe(true);
    expect(after).toMatch(/\| MLP \| kiln reference \[1\] \|/);
    expect(after).toContain('shared 2-core machine');
    expect(after).toContain('![Training images/s per configuration](b.svg)');

    const { tags } = checkXml(readFileSync(out('b.svg'), 'utf8'));
    expect(tags.filter((t) => t === 'rect.bar')).toHaveLength(1);
  });

  it('an unknown backend is a usage error naming the registered ones', () => {
    const r = kiln(['bench', '--backends', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown backend 'nope' \(registered: [^)]*reference/);
  });
});
