import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type ServerHandle } from '../../src/cli/serve.ts';
import { describeBrowser, launchChromium } from './chromium.ts';

// The browser harness end to end: `kiln serve`'s server (src/cli/serve.ts) in front of a page
// that reports what a standalone bundle's page relies on, read back from headless Chromium.
// KILN_BROWSER_ARTIFACTS=DIR keeps the screenshots there.

interface Probe {
  error?: string;
  crossOriginIsolated: boolean;
  sharedArrayBuffer: string;
  sharedMemory: boolean;
  simd: boolean;
  wasmAdd: number;
  gzEncoding: string | null;
  gzText: string;
  worker: { crossOriginIsolated: boolean; sharedArrayBuffer: string };
  gpu: { adapter: boolean; why?: string; architecture?: string; compute?: number[] };
}

const PROBE_JS = String.raw`
// i8x16.popcnt of a splat: valid only where wasm SIMD128 is.
const simd = new Uint8Array([0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,10,1,8,0,65,0,253,15,253,98,11]);

async function gpu() {
  if (!navigator.gpu) return { adapter: false, why: 'no navigator.gpu' };
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return { adapter: false, why: 'requestAdapter() gave null' };
  const device = await adapter.requestDevice();
  const module = device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> b: array<f32>;\n@compute @workgroup_size(4) fn main(@builtin(global_invocation_id) g: vec3u) { b[g.x] = b[g.x] * 2.0 + 1.0; }' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(buf, 0, new Float32Array([1, 2, 3, 4]));
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, 16);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const compute = Array.from(new Float32Array(read.getMappedRange()));
  device.destroy();
  return { adapter: true, architecture: adapter.info?.architecture, compute };
}

async function probe() {
  const r = { crossOriginIsolated: self.crossOriginIsolated, sharedArrayBuffer: typeof SharedArrayBuffer, simd: WebAssembly.validate(simd) };
  // instantiateStreaming takes only application/wasm.
  const { instance } = await WebAssembly.instantiateStreaming(fetch('add.wasm'));
  r.wasmAdd = instance.exports.add(2, 3);
  // The .gz bytes as they are on disk, unpacked by the page.
  const res = await fetch('data/hello.txt.gz');
  r.gzEncoding = res.headers.get('content-encoding');
  r.gzText = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).text();
  // A wasm thread is a worker handed the module's shared memory: post one and see the worker's write.
  const w = new Worker('worker.js', { type: 'module' });
  const reply = () => new Promise((ok) => {
    w.onmessage = (e) => ok(e.data);
    w.onerror = (e) => ok({ error: 'worker: ' + e.message });
    setTimeout(() => ok('timeout'), 3000);
  });
  r.worker = await (async () => { const p = reply(); w.postMessage('hello'); return p; })();
  r.sharedMemory = await (async () => {
    try {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
      const p = reply();
      w.postMessage(memory);
      return (await p) === 'wrote' && Atomics.load(new Int32Array(memory.buffer), 0) === 42;
    } catch {
      return false;
    }
  })();
  w.terminate();
  r.gpu = await gpu().catch((e) => ({ adapter: false, why: String(e) }));
  return r;
}

probe().then(
  (r) => { window.kilnProbe = r; document.getElementById('out').textContent = JSON.stringify(r, null, 2); },
  (e) => { window.kilnProbe = { error: String(e && e.stack || e) }; document.getElementById('out').textContent = String(e); },
);
`;

const top = mkdtempSync(join(tmpdir(), 'kiln-browser-'));
const site = join(top, 'site');
const shots = process.env.KILN_BROWSER_ARTIFACTS ?? join(top, 'shots');

function writeSite(): void {
  mkdirSync(join(site, 'data'), { recursive: true });
  writeFileSync(join(site, 'manifest.json'), '{"format":"kiln-standalone"}');
  writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>kiln harness</title><link rel="stylesheet" href="style.css"><h1>kiln browser harness</h1><pre id="out">probing…</pre><script type="module" src="probe.js"></script>');
  writeFileSync(join(site, 'style.css'), 'body { font: 14px monospace; margin: 2em; } h1 { color: #b5421b; }');
  writeFileSync(join(site, 'probe.js'), PROBE_JS);
  writeFileSync(
    join(site, 'worker.js'),
    `onmessage = (e) => {
      if (e.data === 'hello') return postMessage({ crossOriginIsolated: self.crossOriginIsolated, sharedArrayBuffer: typeof SharedArrayBuffer });
      Atomics.store(new Int32Array(e.data.buffer), 0, 42);
      postMessage('wrote');
    };
    onmessageerror = () => postMessage('messageerror');`,
  );
  // (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  writeFileSync(join(site, 'add.wasm'), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0, 0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11]));
  writeFileSync(join(site, 'data', 'hello.txt.gz'), gzipSync('hello from a .gz file\n'));
}

/** Opens `url` and waits for the page's report. */
async function probePage(browser: Browser, url: string, screenshot?: string): Promise<Probe> {
  const page: Page = await browser.newPage({ viewport: { width: 800, height: 720 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as { kilnProbe?: unknown }).kilnProbe !== undefined, undefined, { timeout: 10_000 });
    const r = await page.evaluate(() => (globalThis as unknown as { kilnProbe: Probe }).kilnProbe);
    if (screenshot) await page.screenshot({ path: screenshot });
    expect(errors).toEqual([]);
    expect(r.error).toBeUndefined();
    return r;
  } finally {
    await page.close();
  }
}

describeBrowser('browser harness: headless Chromium and kiln serve', () => {
  let gpuBrowser: Browser | undefined;
  let iso: ServerHandle | undefined;
  let plain: ServerHandle | undefined;
  beforeAll(async () => {
    writeSite();
    mkdirSync(shots, { recursive: true });
    [iso, plain, gpuBrowser] = await Promise.all([startServer(site, { port: 0 }), startServer(site, { port: 0, isolation: false }), launchChromium({ webgpu: true })]);
  });
  afterAll(async () => {
    await Promise.allSettled([gpuBrowser?.close(), iso?.close(), plain?.close()]);
    rmSync(top, { recursive: true, force: true });
  });

  it('isolated: SharedArrayBuffer in the page and its worker, wasm memory shared with the worker; SIMD; WebGPU on SwiftShader', async () => {
    const shot = join(shots, 'isolated.png');
    const r = await probePage(gpuBrowser!, iso!.url, shot);
    expect(r).toMatchObject({ crossOriginIsolated: true, sharedArrayBuffer: 'function', sharedMemory: true, simd: true });
    expect(r.worker).toEqual({ crossOriginIsolated: true, sharedArrayBuffer: 'function' });
    expect(r).toMatchObject({ wasmAdd: 5, gzEncoding: null, gzText: 'hello from a .gz file\n' });
    expect(r.gpu, r.gpu.why).toMatchObject({ adapter: true, architecture: 'swiftshader', compute: [3, 5, 7, 9] });
    expect(readFileSync(shot).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  });

  it('--no-isolation: not isolated, no SharedArrayBuffer, no memory shared with a worker; single-threaded wasm still loads', async () => {
    const r = await probePage(gpuBrowser!, plain!.url, join(shots, 'not-isolated.png'));
    expect(r).toMatchObject({ crossOriginIsolated: false, sharedArrayBuffer: 'undefined', sharedMemory: false, simd: true, wasmAdd: 5 });
    expect(r.worker).toEqual({ crossOriginIsolated: false, sharedArrayBuffer: 'undefined' });
  });

  it('the default launch (GPU off) opens the page too', async () => {
    const browser = await launchChromium();
    try {
      const r = await probePage(browser, iso!.url);
      expect(r).toMatchObject({ crossOriginIsolated: true, sharedMemory: true });
    } finally {
      await browser.close();
    }
  });
});
