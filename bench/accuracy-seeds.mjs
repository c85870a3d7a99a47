#!/usr/bin/env node
// One-epoch test accuracy of a sample over many seeds, with kiln and (for the textbook SimpleCNN)
// PyTorch running the textbook listing: a single seed's figure swings by about ±0.4% with the
// last few Adam steps, so only the spread over seeds says whether two trainers agree.
//
//   node bench/accuracy-seeds.mjs [--model samples/simple-cnn.ts] [--seeds 0-29]
//        [--pytorch-seeds FIRST-LAST (default: --seeds)] [--threshold 97.3] [--json FILE]
//
// kiln runs are `kiln train MODEL --seed S --metrics-json F` (the default wasm backend), exactly
// what a user runs; PyTorch runs bench/peers/pytorch_textbook.py with Debian's /usr/bin/python3.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const range = (flag, text) => {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
    process.stderr.write(`accuracy-seeds: --${flag} must be N or FIRST-LAST, got '${text}'\n`);
    process.exit(2);
  }
  const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
};
const model = arg('model', 'samples/simple-cnn.ts');
const seeds = range('seeds', arg('seeds', '0-29'));
const torchSeeds = model.endsWith('simple-cnn.ts') ? range('pytorch-seeds', arg('pytorch-seeds', arg('seeds', '0-29'))) : [];
const threshold = Number(arg('threshold', '97.3'));
const jsonOut = arg('json', undefined);

function kilnAccuracy(seed, dir) {
  const metrics = join(dir, `metrics-${seed}.json`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'kiln.js'), 'train', model, '--seed', String(seed), '--metrics-json', metrics], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kiln train --seed ${seed} failed:\n${r.stderr}`);
  return 100 * JSON.parse(readFileSync(metrics, 'utf8')).testAccuracy;
}

function pytorchAccuracies(list, onResult) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [join(root, 'bench', 'peers', 'pytorch_textbook.py'), ...list.map(String)], { cwd: root });
    let out = '', err = '';
    child.stdout.on('data', (d) => {
      out += d;
      for (let nl; (nl = out.indexOf('\n')) >= 0; out = out.slice(nl + 1)) onResult(JSON.parse(out.slice(0, nl)));
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pytorch_textbook.py exited with ${code}:\n${err}`))));
  });
}

function summary(name, values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const reach = s.filter((v) => v >= threshold - 1e-9).length;
  return { name, n, mean, median, sd, min: s[0], max: s[n - 1], reach };
}

const dir = mkdtempSync(join(tmpdir(), 'kiln-seeds-'));
const results = { model, threshold, kiln: {}, pytorch: {} };
try {
  for (const seed of seeds) {
    results.kiln[seed] = kilnAccuracy(seed, dir);
    process.stderr.write(`kiln    seed ${seed}: ${results.kiln[seed].toFixed(2)}%\n`);
  }
  if (torchSeeds.length) {
    await pytorchAccuracies(torchSeeds, (r) => {
      results.pytorch[r.seed] = 100 * r.testAccuracy;
      process.stderr.write(`pytorch seed ${r.seed}: ${results.pytorch[r.seed].toFixed(2)}%\n`);
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const rows = [summary('kiln (wasm)', Object.values(results.kiln))];
if (torchSeeds.length) rows.push(summary('PyTorch (textbook listing)', Object.values(results.pytorch)));
const f = (v) => v.toFixed(2);
// The same seed is the same initial weights and batch order in both (src/runtime/torch-generator.ts),
// so seed by seed the two runs differ only by f32 rounding, which chaos amplifies over an epoch.
const paired = seeds.filter((s) => results.pytorch[s] !== undefined);
const diffs = paired.map((s) => ({ seed: s, d: results.kiln[s] - results.pytorch[s] }));
const worst = diffs.reduce((a, b) => (Math.abs(b.d) > Math.abs(a.d) ? b : a), diffs[0]);
const pairing = diffs.length
  ? [
      '',
      `Same seed, kiln − PyTorch over ${diffs.length} seeds: mean ${(diffs.reduce((a, b) => a + b.d, 0) / diffs.length).toFixed(3)}, mean |difference| ${(diffs.reduce((a, b) => a + Math.abs(b.d), 0) / diffs.length).toFixed(3)}, largest ${f(worst.d)} (seed ${worst.seed}) points`,
    ]
  : [];
const lines = [
  `One epoch of ${model}, test accuracy (%) over seeds`,
  '',
  `| trainer | seeds | mean | median | sd | min | max | ≥ ${threshold}% |`,
  '|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${r.n} | ${f(r.mean)} | ${f(r.median)} | ${f(r.sd)} | ${f(r.min)} | ${f(r.max)} | ${r.reach}/${r.n} |`),
  ...pairing,
  '',
  ...Object.entries({ kiln: results.kiln, PyTorch: results.pytorch })
    .filter(([, v]) => Object.keys(v).length)
    .map(([k, v]) => `${k}: ${Object.entries(v).map(([s, a]) => `${s}→${f(a)}`).join(', ')}`),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ ...results, summary: rows, sameSeedDifference: diffs }, null, 2)}\n`);
