import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type ServerHandle } from '../../src/cli/serve.ts';
import { kiln, miniMnist } from '../cli/helpers.ts';
import { describeBrowser, launchChromium } from './chromium.ts';

// The page of a standalone bundle (src/runtime/standalone/page/) in headless Chromium, served by
// `kiln serve`'s server: it trains in the browser exactly as train.mjs does in Node (the same wasm
// modules: bitwise the same losses), on WebGPU (SwiftShader here), on one thread without
// cross-origin isolation, and shows a broken bundle's error in the page.
//
// KILN_UPDATE_SCREENSHOT=1 writes the screenshot of the trained page to docs/standalone-page.png
// (the README's); otherwise it goes to the temporary folder.

interface PageState {
  state: 'idle' | 'loading' | 'training' | 'done' | 'error';
  losses: number[];
  epochs: { epoch: number; testAccuracy: number; testLoss: number }[];
  backend?: string;
  threads?: number;
  description?: string;
  why?: string;
  crossOriginIsolated: boolean;
  error?: { message: string; hint?: string };
  imagesPerSec?: number;
  trainSeconds?: number;
}

declare const window: { kilnPage: PageState & { predictDrawing(p: number[]): Promise<number[]> } };

/** Steps the page trains on WebGPU: SwiftShader runs a SimpleCNN step in about 1 s (see below). */
const WEBGPU_STEPS = 32;

const tmp = mkdtempSync(join(tmpdir(), 'kiln-page-'));
const bundle = join(tmp, 'simple-cnn.kiln');
const servers: ServerHandle[] = [];
const browsers: Browser[] = [];
let nodeLosses: number[] = [];
let nodeImagesPerSec = 0;
let server: ServerHandle;
let browser: Browser;
let gpuBrowser: Browser | undefined;

async function serve(dir: string, isolation = true): Promise<ServerHandle> {
  const s = await startServer(dir, { port: 0, isolation });
  servers.push(s);
  return s;
}

async function launch(webgpu = false): Promise<Browser> {
  const b = await launchChromium({ webgpu });
  browsers.push(b);
  return b;
}

/** Chromium with WebGPU on (SwiftShader), launched on first use. */
async function withGpu(): Promise<Browser> {
  gpuBrowser ??= await launch(true);
  return gpuBrowser;
}

/** Opens the page and waits until it is in one of `states` (or in error, which ends the wait too). */
async function openPage(b: Browser, url: string, states: PageState['state'][], timeout = 60_000): Promise<{ page: Page; state: PageState }> {
  const page = await b.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction((want) => !!window.kilnPage && (want.includes(window.kilnPage.state) || window.kilnPage.state === 'error'), states, { timeout, polling: 100 });
  const state = await page.evaluate(() => window.kilnPage as PageState);
  expect(problems).toEqual([]);
  return { page, state };
}

/** The text of the page's error box, or null when it is hidden. */
async function errorBox(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    const el = document.getElementById('error')!;
    return el.hidden ? null : el.innerText;
  });
}

describeBrowser('the standalone page', () => {
  beforeAll(async () => {
    const c = kiln(['compile', 'samples/simple-cnn.ts', '--standalone', '-o', bundle, '--threads', '1,2']);
    expect(c.code, c.stderr).toBe(0);
    const log = join(tmp, 'node.jsonl');
    const metrics = join(tmp, 'node-metrics.json');
    const r = spawnSync(process.execPath, [join(bundle, 'train.mjs'), '--max-steps', '200', '--threads', '2', '--log', log, '--metrics-json', metrics], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    nodeLosses = readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(nodeLosses).toHaveLength(200);
    nodeImagesPerSec = (JSON.parse(readFileSync(metrics, 'utf8')) as { imagesPerSec: number }).imagesPerSec;
    server = await serve(bundle);
    browser = await launch();
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled(browsers.map((b) => b.close()));
    await Promise.allSettled(servers.map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('trains 200 steps on wasm with 2 threads: the losses of node train.mjs, bit for bit', async () => {
    const t0 = performance.now();
    const { page, state } = await openPage(browser, `${server.url}?backend=wasm&threads=2&maxSteps=200&autostart=1`, ['done']);
    const seconds = (performance.now() - t0) / 1000;
    expect(state.error).toBeUndefined();
    expect(state.crossOriginIsolated).toBe(true);
    expect(state.backend).toBe('wasm');
    expect(state.threads).toBe(2);
    expect(state.description).toMatch(/^wasm, 2 threads/);
    expect(state.losses).toEqual(nodeLosses);
    expect(state.epochs).toHaveLength(1);
    expect(state.epochs[0]!.testAccuracy).toBeGreaterThan(0.9);
    console.log(`page: 200 steps at ${Math.round(state.imagesPerSec!)} images/s (run ${state.trainSeconds!.toFixed(2)} s with the test evaluation; page load to done ${seconds.toFixed(1)} s); node train.mjs: ${Math.round(nodeImagesPerSec)} images/s`);

    // The curve is drawn: the accent colour (#e8590c) covers part of the canvas.
    const curve = await page.evaluate(() => {
      const c = document.getElementById('loss-chart') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i]! > 200 && d[i + 1]! > 60 && d[i + 1]! < 130 && d[i + 2]! < 80 && d[i + 3]! > 200) n++;
      return n;
    });
    expect(curve).toBeGreaterThan(500);
    // Every test digit shown is marked right or wrong after the run.
    const marked = await page.evaluate(() => document.querySelectorAll('.digit-cell.right, .digit-cell.wrong').length);
    expect(marked).toBe(24);
    // One channel: drawn grey (R = G = B), ink on black; a [1, 28, 28] model has the drawing pad.
    const grey = await page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('.digit-cell canvas')!;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let ink = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return -1;
        if (d[i]! > 128) ink++;
      }
      return ink;
    });
    expect(grey).toBeGreaterThan(50);
    expect(await page.isVisible('#pad')).toBe(true);
    expect(await page.isVisible('#pad-off')).toBe(false);

    // The first test image (a 7) through the page's prediction hook.
    const images = gunzipSync(readFileSync(join(bundle, 'data', 't10k-images-idx3-ubyte.gz')));
    const seven = Array.from(images.subarray(16, 16 + 784));
    const probs = await page.evaluate((px) => window.kilnPage.predictDrawing(px), seven);
    expect(probs).toHaveLength(10);
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(probs.indexOf(Math.max(...probs))).toBe(7);

    // A 3 drawn on the pad with the mouse, for the screenshot.
    const pad = (await page.locator('#pad').boundingBox())!;
    const at = (x: number, y: number) => page.mouse.move(pad.x + (x * pad.width) / 28, pad.y + (y * pad.height) / 28, { steps: 2 });
    const arc = (cx: number, cy: number, r: number, from: number, to: number): [number, number][] =>
      Array.from({ length: 17 }, (_, i) => {
        const t = ((from + ((to - from) * i) / 16) * Math.PI) / 180;
        return [cx + r * Math.cos(t), cy + r * Math.sin(t)];
      });
    const strokes = [arc(13.5, 9, 4.8, -165, 95), arc(13.5, 18.3, 5.6, -95, 160)];
    for (const s of strokes) {
      await at(...s[0]!);
      await page.mouse.down();
      for (const p of s.slice(1)) await at(...p);
      await page.mouse.up();
    }
    await page.waitForFunction(() => document.getElementById('bars-note')!.textContent!.startsWith('predicted'), undefined, { timeout: 10_000 });
    const drawn = await page.evaluate(() => document.getElementById('bars-note')!.textContent);
    console.log(`page: the drawn 3 is ${drawn}`);
    await page.waitForTimeout(300);
    const shot = process.env.KILN_UPDATE_SCREENSHOT ? join(process.cwd(), 'docs', 'standalone-page.png') : join(tmp, 'standalone-page.png');
    mkdirSync(join(shot, '..'), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    await page.close();
  });

  it('defaults to wasm when the only WebGPU adapter is a software one (SwiftShader)', async () => {
    const { page, state } = await openPage(await withGpu(), server.url, ['idle']);
    expect(state.error).toBeUndefined();
    expect(state.backend).toBe('wasm');
    const options = await page.evaluate(() => Array.from((document.getElementById('backend') as HTMLSelectElement).options, (o) => `${o.value}:${o.text}:${o.disabled}`));
    expect(options).toEqual(['wasm:wasm:false', 'webgpu:webgpu (software):false']);
    await page.close();
  });

  it(`trains ${WEBGPU_STEPS} steps on WebGPU within 1e-5 of node's wasm losses`, async () => {
    // SwiftShader takes about 1 s per training step and 3.4 s per 1000 test images here, so this
    // bundle carries MNIST's 60,000 training images (the same batches as the Node run) and 100
    // test images: the evaluations then cost little, and 32 steps (two submissions of 16) keep
    // the test under a minute.
    const data = miniMnist(join(tmp, 'mini'), 60000, 100);
    const gpuBundle = join(tmp, 'gpu.kiln');
    const c = kiln(['compile', 'samples/simple-cnn.ts', '--standalone', '-o', gpuBundle, '--backend', 'webgpu', '--data', data]);
    expect(c.code, c.stderr).toBe(0);
    const s = await serve(gpuBundle);
    const t0 = performance.now();
    const { page, state } = await openPage(await withGpu(), `${s.url}?backend=webgpu&maxSteps=${WEBGPU_STEPS}&autostart=1`, ['done'], 100_000);
    expect(state.error).toBeUndefined();
    expect(state.backend).toBe('webgpu');
    expect(state.description).toMatch(/software/);
    expect(state.why).toMatch(/software adapter/);
    expect(state.losses).toHaveLength(WEBGPU_STEPS);
    const worst = Math.max(...state.losses.map((l, i) => Math.abs(l - nodeLosses[i]!) / Math.abs(nodeLosses[i]!)));
    console.log(`page webgpu: ${WEBGPU_STEPS} steps, ${state.imagesPerSec!.toFixed(0)} images/s (${((64 / state.imagesPerSec!) * 1000).toFixed(0)} ms a step), page load to done ${((performance.now() - t0) / 1000).toFixed(1)} s; worst relative difference from node's wasm ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
    await page.close();
  }, 150_000);

  it('runs on one thread without cross-origin isolation, and says why', async () => {
    const plain = await serve(bundle, false);
    const { page, state } = await openPage(browser, `${plain.url}?maxSteps=20&autostart=1`, ['done']);
    expect(state.error).toBeUndefined();
    expect(state.crossOriginIsolated).toBe(false);
    expect(state.backend).toBe('wasm');
    expect(state.threads).toBe(1);
    expect(state.losses).toHaveLength(20);
    const worst = Math.max(...state.losses.map((l, i) => Math.abs(l - nodeLosses[i]!) / Math.abs(nodeLosses[i]!)));
    console.log(`page, 1 thread: worst relative difference from node's 2 threads over 20 steps ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
    const why = await page.evaluate(() => document.getElementById('runtime-why')!.textContent);
    expect(why).toMatch(/^1 thread: this page is not cross-origin isolated.*kiln serve/);
    // More threads cannot be picked here.
    const two = await page.evaluate(() => (document.querySelector('#threads option[value="2"]') as HTMLOptionElement).disabled);
    expect(two).toBe(true);
    await page.close();
  });

  it('trains a bundle without data from picked IDX files, through Stop, Continue and predictions, to the weights of node train.mjs', async () => {
    // A bundle with no dataset: the page asks for the four files. Its epoch, interrupted by a
    // Stop and by predictions (each answered between two steps), is node's uninterrupted one.
    const nodata = join(tmp, 'nodata.kiln');
    const c = kiln(['compile', 'samples/simple-cnn.ts', '--standalone', '-o', nodata, '--data', 'none', '--backend', 'wasm', '--threads', '2']);
    expect(c.code, c.stderr).toBe(0);
    const nodeWeights = join(tmp, 'node-epoch.safetensors');
    const log = join(tmp, 'node-epoch.jsonl');
    const r = spawnSync(process.execPath, [join(bundle, 'train.mjs'), '--threads', '2', '--log', log, '--save', nodeWeights], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const epochLosses = readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);

    const s = await serve(nodata);
    const { page, state } = await openPage(browser, s.url, ['idle']);
    expect(state.error).toBeUndefined();
    expect(await page.isVisible('#data-drop')).toBe(true);
    expect(await page.isDisabled('#train')).toBe(true);
    const files = readdirSync(join(bundle, 'data')).map((f) => join(bundle, 'data', f));
    await page.setInputFiles('#data-files', files);
    await page.waitForFunction(() => document.querySelectorAll('.digit-cell').length === 24 && !(document.getElementById('train') as HTMLButtonElement).disabled);

    await page.click('#train');
    await page.waitForFunction(() => window.kilnPage.losses.length >= 100, undefined, { polling: 20 });
    const seven = Array.from(gunzipSync(readFileSync(join(bundle, 'data', 't10k-images-idx3-ubyte.gz'))).subarray(16, 16 + 784));
    const during = await page.evaluate((px) => Promise.all([window.kilnPage.predictDrawing(px), window.kilnPage.predictDrawing(px)]), seven);
    expect(during.map((p) => p.length)).toEqual([10, 10]);
    await page.click('#stop');
    await page.waitForFunction(() => window.kilnPage.state === 'done');
    const stoppedAt = await page.evaluate(() => window.kilnPage.losses.length);
    expect(stoppedAt).toBeGreaterThan(100);
    expect(stoppedAt).toBeLessThan(938);
    expect(await page.textContent('#train')).toBe('Continue');
    await page.click('#train');
    await page.waitForFunction(() => window.kilnPage.losses.length > 500, undefined, { polling: 20 });
    await page.evaluate((px) => window.kilnPage.predictDrawing(px), seven);
    await page.waitForFunction(() => window.kilnPage.state === 'done' || window.kilnPage.state === 'error', undefined, { timeout: 60_000 });
    const end = await page.evaluate(() => window.kilnPage as PageState);
    expect(end.error).toBeUndefined();
    expect(end.losses).toEqual(epochLosses);
    expect(end.epochs).toHaveLength(1);
    expect(end.epochs[0]!.epoch).toBe(1);
    console.log(`page, no-data bundle: stopped at step ${stoppedAt}, continued to ${end.losses.length}; test accuracy ${(end.epochs[0]!.testAccuracy * 100).toFixed(2)}%`);

    // Save weights: node's --save bytes.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toBe('SimpleCNN.safetensors');
    const saved = join(tmp, 'page.safetensors');
    await download.saveAs(saved);
    expect(readFileSync(saved).equals(readFileSync(nodeWeights))).toBe(true);

    // Load weights: the bundle's initial ones, which get most test digits wrong again.
    await page.setInputFiles('#load', join(bundle, 'params.safetensors'));
    await page.waitForFunction(() => /weights from params\.safetensors/.test(document.getElementById('digits-after')!.textContent!));
    expect(await page.textContent('#note')).toContain('loaded the weights from params.safetensors');
    await page.close();
  });

  /** A copy of the bundle, broken by `damage`, served; the page's error box after loading it. */
  async function broken(name: string, damage: (dir: string) => void, query = ''): Promise<{ state: PageState; box: string | null }> {
    const dir = join(tmp, name);
    cpSync(bundle, dir, { recursive: true });
    damage(dir);
    const s = await serve(dir);
    const { page, state } = await openPage(browser, `${s.url}${query}`, ['idle', 'done'], 30_000);
    const box = await errorBox(page);
    await page.close();
    return { state, box };
  }

  it('shows a bundle of another format version in its error box', async () => {
    const { state, box } = await broken('version.kiln', (dir) => {
      const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { version: number };
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...m, version: 99 }));
    });
    expect(state.state).toBe('error');
    expect(state.error!.message).toMatch(/manifest\.json is a version 99 standalone bundle; this runtime reads version 2/);
    expect(state.error!.hint).toMatch(/rebuild the bundle/);
    expect(box).toContain('version 99 standalone bundle');
    expect(box).toContain('hint: rebuild the bundle');
  });

  it('shows a changed wasm module in its error box', async () => {
    const { state, box } = await broken('wasm.kiln', (dir) => {
      for (const f of readdirSync(join(dir, 'wasm'))) {
        const p = join(dir, 'wasm', f);
        const b = readFileSync(p);
        b[b.length - 1] ^= 1;
        writeFileSync(p, b);
      }
    }, '?backend=wasm');
    expect(state.state).toBe('error');
    expect(state.error!.message).toMatch(/wasm\/(train|eval)-\d+-t\d+(-relaxed)?\.wasm has changed since the bundle was written/);
    expect(box).toMatch(/has changed since the bundle was written/);
    expect(box).toMatch(/hint: the bundle was changed or copied incompletely/);
  });

  it('shows a missing params.safetensors in its error box', async () => {
    const { state, box } = await broken('params.kiln', (dir) => unlinkSync(join(dir, 'params.safetensors')));
    expect(state.state).toBe('error');
    expect(state.error!.message).toMatch(/params\.safetensors is missing from the bundle/);
    expect(box).toMatch(/params\.safetensors is missing from the bundle/);
    expect(box).toMatch(/hint: the bundle was changed or copied incompletely/);
  });
});
