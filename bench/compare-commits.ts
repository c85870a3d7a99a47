// `kiln bench` at two commits, side by side in one run: a clean worktree of each (sharing this
// checkout's node_modules), runs alternating between them so the machine's load falls on both,
// medians per configuration and the after/before ratios.
//
//   node bench/run.mjs bench/compare-commits.ts BEFORE [AFTER=HEAD] [--rounds 3] [--json FILE] [-- kiln bench flags]
//
// e.g. `node bench/run.mjs bench/compare-commits.ts e74a6c8 -- --backends wasm,webgpu --threads 1,2`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Row {
  name: string;
  backend: string;
  threads: number;
  trainImagesPerSec: number;
  inferImagesPerSec: number;
  kernelsPerStep: number;
}

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const own = dash < 0 ? args : args.slice(0, dash);
const benchFlags = dash < 0 ? [] : args.slice(dash + 1);
const flag = (name: string, fallback: string) => {
  const i = own.indexOf(name);
  return i < 0 ? fallback : own.splice(i, 2)[1]!;
};
const rounds = Number(flag('--rounds', '3'));
const jsonOut = flag('--json', '');
const [before, after = 'HEAD'] = own;
if (!before || !(rounds >= 1)) {
  process.stderr.write('usage: node bench/run.mjs bench/compare-commits.ts BEFORE [AFTER] [--rounds N] [--json FILE] [-- kiln bench flags]\n');
  process.exit(1);
}

const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const work = mkdtempSync(join(tmpdir(), 'kiln-compare-'));
const trees = [before, after].map((ref, i) => {
  const dir = join(work, i === 0 ? 'before' : 'after');
  execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', '-q', dir, ref]);
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const commit = execFileSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim();
  return { ref, dir, commit, runs: [] as Row[][] };
});

try {
  for (let r = 1; r <= rounds; r++) {
    for (const t of trees) {
      const out = join(work, `${trees.indexOf(t)}-${r}.json`);
      process.stderr.write(`round ${r}/${rounds}: ${t.ref} (${t.commit})\n`);
      execFileSync(process.execPath, ['bin/kiln.js', 'bench', ...benchFlags, '--json', out], { cwd: t.dir, stdio: ['ignore', 'ignore', 'inherit'] });
      t.runs.push((JSON.parse(readFileSync(out, 'utf8')) as { results: Row[] }).results);
    }
  }
} finally {
  for (const t of trees) execFileSync('git', ['-C', root, 'worktree', 'remove', '--force', t.dir]);
  rmSync(work, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const key = (r: Row) => `${r.name}|${r.backend}|${r.threads}`;
const keys = [...new Set(trees[0]!.runs.flat().map(key))].filter((k) => trees[1]!.runs.flat().some((r) => key(r) === k));
const stat = (t: (typeof trees)[number], k: string) => {
  const rows = t.runs.flat().filter((r) => key(r) === k);
  return { train: median(rows.map((r) => r.trainImagesPerSec)), infer: median(rows.map((r) => r.inferImagesPerSec)), kernels: rows[0]!.kernelsPerStep };
};
const table = keys.map((k) => {
  const [name, backend, threads] = k.split('|');
  const [b, a] = trees.map((t) => stat(t, k));
  return { name, backend, threads: Number(threads), before: b!, after: a!, trainRatio: a!.train / b!.train, inferRatio: a!.infer / b!.infer };
});
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const lines = [
  `before: ${trees[0]!.commit}`,
  `after:  ${trees[1]!.commit}`,
  `${rounds} alternating rounds, medians`,
  '',
  '| model | backend | threads | train img/s before | after | after/before | infer img/s before | after | after/before | kernels/step |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...table.map((t) => `| ${t.name} | ${t.backend} | ${t.threads} | ${fmt(t.before.train)} | ${fmt(t.after.train)} | ${t.trainRatio.toFixed(2)} | ${fmt(t.before.infer)} | ${fmt(t.after.infer)} | ${t.inferRatio.toFixed(2)} | ${t.before.kernels} → ${t.after.kernels} |`),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ before: trees[0]!.commit, after: trees[1]!.commit, rounds, benchFlags, runs: trees.map((t) => t.runs), table }, null, 2)}\n`);
