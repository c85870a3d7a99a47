// Training speed of one standalone bundle in Node (train.mjs) and in Chromium (the bundle's page,
// served by kiln serve's server), side by side on this machine, plus the runtime's size and the
// page's load time until its first training step.
//
//   node bench/run.mjs bench/standalone-browser.ts [--steps 300] [--runs 3] [--threads 2] [--model samples/simple-cnn.ts]
//
// Writes bench/standalone-browser.json. Both sides run the same wasm modules (relaxed SIMD) at
// the same thread count; images/s counts training steps only (data preparation included, as in
// kiln train), and runs alternate Node and browser so that load on the machine hits both alike.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startServer } from '../src/cli/serve.ts';
import { launchChromium } from '../test/browser/chromium.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const steps = Number(arg('steps', '300'));
const runs = Number(arg('runs', '3'));
const threads = Number(arg('threads', '2'));
const model = arg('model', 'samples/simple-cnn.ts');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-standalone-'));
const bundle = join(dir, 'bundle');
const c = spawnSync(process.execPath, ['bin/kiln.js', 'compile', model, '--standalone', '--backend', 'wasm', '--threads', `1,${threads}`, '-o', bundle], { encoding: 'utf8' });
if (c.status !== 0) throw new Error(c.stderr);
const runtime = readFileSync(join(bundle, 'kiln-runtime.mjs'));

const server = await startServer(bundle, { port: 0 });
const browser = await launchChromium();
const node: number[] = [];
const page: number[] = [];
const firstStep: number[] = [];
try {
  for (let r = 0; r < runs; r++) {
    const metrics = join(dir, 'metrics.json');
    const n = spawnSync(process.execPath, [join(bundle, 'train.mjs'), '--max-steps', String(steps), '--threads', String(threads), '--metrics-json', metrics], { encoding: 'utf8' });
    if (n.status !== 0) throw new Error(n.stderr);
    node.push((JSON.parse(readFileSync(metrics, 'utf8')) as { imagesPerSec: number }).imagesPerSec);

    const p = await browser.newPage();
    const t0 = performance.now();
    await p.goto(`${server.url}?backend=wasm&threads=${threads}&maxSteps=${steps}&autostart=1`);
    await p.waitForFunction(() => window.kilnPage?.losses.length > 0 || window.kilnPage?.state === 'error', undefined, { timeout: 60_000, polling: 5 });
    firstStep.push((performance.now() - t0) / 1000);
    await p.waitForFunction(() => window.kilnPage?.state === 'done' || window.kilnPage?.state === 'error', undefined, { timeout: 300_000 });
    const s = await p.evaluate(() => ({ ips: window.kilnPage.imagesPerSec, threads: window.kilnPage.threads, error: window.kilnPage.error, n: window.kilnPage.losses.length }));
    if (s.error || s.threads !== threads || s.n !== steps) throw new Error(`page run: ${JSON.stringify(s)}`);
    page.push(s.ips!);
    await p.close();
    console.error(`run ${r + 1}/${runs}: node ${Math.round(node.at(-1)!)} images/s, browser ${Math.round(page.at(-1)!)} images/s, first step after ${firstStep.at(-1)!.toFixed(2)} s`);
  }
} finally {
  await browser.close();
  await server.close();
}
const result = {
  model,
  steps,
  threads,
  runs,
  nodeImagesPerSec: median(node),
  browserImagesPerSec: median(page),
  ratio: median(page) / median(node),
  pageLoadToFirstStepSeconds: median(firstStep),
  runtimeBytes: runtime.length,
  runtimeGzipBytes: gzipSync(runtime, { level: 9 }).length,
  all: { node, page, firstStep },
};
writeFileSync('bench/standalone-browser.json', JSON.stringify(result, null, 2) + '\n');
console.log(`| ${model} | ${threads} | ${Math.round(result.nodeImagesPerSec).toLocaleString('en-US')} | ${Math.round(result.browserImagesPerSec).toLocaleString('en-US')} | ${result.ratio.toFixed(2)} | ${result.pageLoadToFirstStepSeconds.toFixed(2)} s | ${(result.runtimeGzipBytes / 1024).toFixed(1)} KiB |`);
rmSync(dir, { recursive: true, force: true });
