/**
 * Runs the bad-input corpus (bad-input/cases.ts) through the real CLI: for each case the exact
 * message, the exit code, that its output folder holds nothing (or only what a failed run keeps),
 * and, for the whole corpus, that nothing else appeared in the working directory (a default-named
 * checkpoint, a temporary file left by an atomic write). Two cases run at a time (two cores).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CASES, commandLine, prepare, type BadInputCase } from './bad-input/cases.ts';
import { SHARED } from './bad-input/make.ts';
import { miniMnist, type Run } from './helpers.ts';

const bin = join(process.cwd(), 'bin/kiln.js');
const record = process.env.KILN_CORPUS_RECORD === '1';
const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'kiln-corpus-')));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

/** Runs the CLI in the corpus's folder; a run past `timeoutMs` is killed and reported as a hang. */
function kilnIn(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run & { hung: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timer = setTimeout(() => ((hung = true), child.kill('SIGKILL')), timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, hung });
    });
  });
}

async function must(args: string[]): Promise<void> {
  const r = await kilnIn(args);
  if (r.code !== 0) throw new Error(`corpus setup failed: kiln ${args.join(' ')}\n${r.stderr}`);
}

/** Every file under `dir` (relative paths) with its size and mtime, `skip`ping top-level folders. */
function tree(dir: string, skip: string[] = [], base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (dir === base && skip.includes(e.name)) continue;
    if (e.isDirectory()) out.push(`${relative(base, p)}/`, ...tree(p, skip, base));
    else out.push(`${relative(base, p)} ${statSync(p).size} ${statSync(p).mtimeMs}`);
  }
  return out.sort();
}

/** From the first `error:` line to the end, the working directory written <cwd>. */
function message(stderr: string): string {
  const text = stderr.split(cwd).join('<cwd>');
  const at = text.search(/^(internal )?error:/m);
  return at < 0 ? text : text.slice(at);
}

const results = new Map<string, Run & { hung: boolean; seconds: number }>();
let before: string[] = [];

beforeAll(async () => {
  mkdirSync(join(cwd, SHARED.models), { recursive: true });
  for (const dir of ['samples', 'test/fixtures/models']) {
    for (const f of readdirSync(dir)) if (f.endsWith('.ts')) copyFileSync(join(dir, f), join(cwd, SHARED.models, f));
  }
  miniMnist(join(cwd, SHARED.data), 64, 20);
  const oneStep = ['--data', SHARED.data, '--backend', 'reference', '--max-steps', '1'];
  await Promise.all([
    must(['compile', `${SHARED.models}/mlp.ts`, '-o', SHARED.bundle]).then(() => must(['train', SHARED.bundle, ...oneStep, '--save', SHARED.weights, '--checkpoint', SHARED.checkpoint])),
    must(['train', `${SHARED.models}/good.ts`, ...oneStep, '--checkpoint', SHARED.otherCheckpoint]),
  ]);
  const lines = CASES.map((c) => [c, commandLine(c, prepare(cwd, c))] as const);
  before = tree(cwd, ['out']);
  // Two at a time, longest (model files: the linter) first.
  const queue = [...lines];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [c, args] = next;
      const t = performance.now();
      const r = await kilnIn(args, c.env);
      results.set(c.name, { ...r, seconds: (performance.now() - t) / 1000 });
    }
  };
  await Promise.all([worker(), worker()]);
  if (record) {
    const rows = CASES.map((c) => ({ name: c.name, args: commandLine(c, { in: `in/${c.name}`, out: `out/${c.name}` }).join(' '), code: results.get(c.name)!.code, seconds: results.get(c.name)!.seconds.toFixed(2), stderr: message(results.get(c.name)!.stderr), out: readdirSync(join(cwd, 'out', c.name)) }));
    writeFileSync(join(tmpdir(), 'kiln-corpus-record.json'), JSON.stringify(rows, null, 2));
  }
}, 300_000);

describe('bad-input corpus: exact message, exit code, no file written', () => {
  it.each(CASES.map((c) => [c.name, c] as [string, BadInputCase]))('%s', (_, c) => {
    const r = results.get(c.name)!;
    expect(r.hung, `${c.name} hung`).toBe(false);
    if (!record) expect({ code: r.code, stderr: message(r.stderr) }).toEqual({ code: c.code, stderr: c.stderr });
    // Never a stack trace without --debug.
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const outDir = join(cwd, 'out', c.name);
    expect(readdirSync(outDir).sort()).toEqual([...(c.leaves ?? [])].sort());
    c.check?.(outDir, r);
  });

  it('wrote nothing outside the cases\' output folders: no default-named file, no temporary file', () => {
    expect(tree(cwd, ['out'])).toEqual(before);
  });

  it('covers every kind of input with several cases', () => {
    const kinds = new Map<string, number>();
    for (const c of CASES) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
    for (const [kind, n] of kinds) expect(n, kind).toBeGreaterThanOrEqual(kind === 'run' ? 1 : 3);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });
});
