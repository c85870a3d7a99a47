#!/usr/bin/env node
// How soon kiln answers: `kiln --help` until it exits (through node and through npx), and
// `kiln train --max-steps 1` until its first line of output and until it exits, with the model's
// lint verdict cached and not. Each command runs `--runs` times one after another; the figures
// are medians with the range beside them, since a shared machine's load moves single runs by a
// factor of two.
//
// With --readme N it also times the README's command end to end, `npx kiln train
// samples/simple-cnn.ts` (one epoch and the test evaluation, default settings), N times
// alternating with the textbook's PyTorch listing (bench/peers/pytorch_textbook.py, Debian's
// python3-torch), and reports both and their ratio.
//
// Usage: node bench/startup.mjs [--runs N] [--json FILE] [--installed DIR] [--readme N]
//   --installed DIR  also time the bin of a package installed under DIR/node_modules (as
//                    scripts/check-pack.sh leaves it), which runs its prebuilt bundle as it is
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '10' }, json: { type: 'string', default: join(root, 'bench', 'startup.json') }, installed: { type: 'string' }, readme: { type: 'string' } } });
const runs = Number(args.runs);
const pkgName = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name;

/** Runs a command once: ms until its first byte and first full line (stdout or stderr) and until it exits. */
function timeOnce(cmd, argv, cwd) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let firstByte;
    let firstLine;
    let firstText = '';
    let header;
    let text = '';
    const on = (d) => {
      const now = performance.now() - t0;
      firstByte ??= now;
      if (firstLine === undefined) {
        firstText += d;
        if (firstText.includes('\n')) firstLine = now;
      }
      if (header === undefined) {
        text += d;
        if (/(^|\n)kiln: training .*\n/.test(text)) header = now;
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${argv.join(' ')} exited with ${code}: ${firstText.slice(0, 300)}`));
      else resolve({ firstByte, firstLine, header, total: performance.now() - t0, line: firstText.split('\n')[0] });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const stats = (xs) => ({ medianMs: Math.round(median(xs)), minMs: Math.round(Math.min(...xs)), maxMs: Math.round(Math.max(...xs)), samplesMs: xs.map(Math.round) });

async function measure(label, cmd, argv, cwd, n, before = () => {}) {
  await timeOnce(cmd, argv, cwd); // untimed: builds dist/ if stale, warms the file cache
  const samples = [];
  for (let i = 0; i < n; i++) {
    before();
    samples.push(await timeOnce(cmd, argv, cwd));
  }
  const r = { label, command: [cmd === process.execPath ? 'node' : cmd, ...argv.map((a) => (a.startsWith(root) ? relative(root, a) : a))].join(' '), runs: n, firstLine: samples[0].line, firstByte: stats(samples.map((s) => s.firstByte)), firstLineMs: stats(samples.map((s) => s.firstLine)), ...(samples[0].header !== undefined ? { headerMs: stats(samples.map((s) => s.header)) } : {}), total: stats(samples.map((s) => s.total)) };
  const f = (s) => `${String(s.medianMs).padStart(5)} ms (${s.minMs}-${s.maxMs})`;
  process.stdout.write(`${label.padEnd(34)} first line ${f(r.firstLineMs)}${r.headerMs ? `   'kiln: training' ${f(r.headerMs)}` : ''}   exit ${f(r.total)}\n`);
  return r;
}

const node = process.execPath;
const bin = join(root, 'bin', 'kiln.js');
const loadBefore = loadavg();
process.stdout.write(`kiln startup, ${runs} runs each (median, range); load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}\n`);
const results = [];
results.push(await measure('node bin/kiln.js --help', node, [bin, '--help'], root, runs));
results.push(await measure('npx kiln --help', 'npx', ['kiln', '--help'], root, runs));
if (args.installed) {
  const installedBin = join(args.installed, 'node_modules', pkgName, 'bin', 'kiln.js');
  if (!existsSync(installedBin)) throw new Error(`${installedBin} not found: run scripts/check-pack.sh ${args.installed} first`);
  results.push(await measure(`installed ${pkgName}: kiln --help`, node, [installedBin, '--help'], args.installed, runs));
  results.push(await measure(`installed ${pkgName}: npx kiln --help`, 'npx', ['kiln', '--help'], args.installed, runs));
}
const trainRuns = Math.max(3, Math.ceil(runs / 2));
const train = [bin, 'train', 'samples/simple-cnn.ts', '--max-steps', '1'];
// Cold: kiln's cache emptied before each run (the model's lint verdict, src/frontend/lint-cache.ts,
// and its built modules, src/runtime/wasm/step-cache.ts), as on a model's first run or after an
// edit; warm: the same model run again.
// A cache folder of this benchmark's own (inherited by every command it runs), not the user's.
const cacheDir = join(tmpdir(), `kiln-startup-cache-${process.pid}`);
process.env.KILN_CACHE_DIR = cacheDir;
const forget = () => rmSync(cacheDir, { recursive: true, force: true });
results.push(await measure('kiln train, model never run', node, train, root, trainRuns, forget));
results.push(await measure('kiln train, model run before', node, train, root, trainRuns));

const readme = {};
if (args.readme) {
  // Alternating, so that the machine's load drifts onto both alike. kiln runs with its cache
  // warm (a user's second run; the first, untimed run of each warms it and the file cache) and
  // with it emptied before the run (the model's first run).
  const n = Number(args.readme);
  const kilnCmd = ['npx', ['kiln', 'train', 'samples/simple-cnn.ts']];
  const torchCmd = ['/usr/bin/python3', [join(root, 'bench', 'peers', 'pytorch_textbook.py'), '0']];
  for (const [cmd, argv] of [kilnCmd, torchCmd]) await timeOnce(cmd, argv, root);
  const k = [];
  const cold = [];
  const t = [];
  for (let i = 0; i < n; i++) {
    k.push((await timeOnce(...kilnCmd, root)).total);
    forget();
    cold.push((await timeOnce(...kilnCmd, root)).total);
    t.push((await timeOnce(...torchCmd, root)).total);
  }
  const range = (xs) => `${(median(xs) / 1000).toFixed(2)} s (${(Math.min(...xs) / 1000).toFixed(2)}-${(Math.max(...xs) / 1000).toFixed(2)})`;
  Object.assign(readme, { runs: n, kiln: { command: 'npx kiln train samples/simple-cnn.ts', ...stats(k) }, kilnFirstRun: stats(cold), pytorch: { command: '/usr/bin/python3 bench/peers/pytorch_textbook.py 0', ...stats(t) }, speedup: Number((median(t) / median(k)).toFixed(2)) });
  process.stdout.write(`README command, one epoch with evaluation, ${n} runs alternating: kiln ${range(k)}, its first run ${range(cold)}, textbook PyTorch ${range(t)}: ${readme.speedup}x\n`);
}

const cpu = cpus();
const report = {
  machine: { cpu: cpu[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.versions.node, loadAverageBefore: loadBefore, loadAverageAfter: loadavg(), date: new Date().toISOString().slice(0, 10) },
  command: `node bench/startup.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  results,
  ...(args.readme ? { readme } : {}),
};
writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`wrote ${relative(process.cwd(), args.json)}\n`);
