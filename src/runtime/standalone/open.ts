import type { WasmStep, WgslStep, WgslStepDispatch } from '../../codegen/artifact.ts';
import { KilnError } from '../../ir/errors.ts';
import type { Backend } from '../backend.ts';
import { relaxedSimdValid } from '../wasm/relaxed-probe.ts';
import type { WasmThreads } from '../wasm/threads.ts';
import { WasmBackend } from '../wasm/backend.ts';
import { WebGpuBackend } from '../webgpu/backend.ts';
import type { Gpu } from '../webgpu/gpu.ts';
import type { StandaloneBundle } from './bundle.ts';
import type { Manifest } from './manifest.ts';

export type StandaloneBackend = 'wasm' | 'webgpu';

export interface OpenOptions {
  /** Default: wasm. */
  backend?: StandaloneBackend;
  /** wasm threads; must be a count the bundle holds modules for. Default: the most the bundle has, up to the cores. */
  threads?: number;
  /** wasm: use the relaxed-SIMD modules when the host runs them (default), or never. */
  relaxed?: boolean;
  /** webgpu: steps per submit. */
  depth?: number;
}

export interface OpenedBackend {
  backend: Backend;
  /** What runs it, in words (threads and SIMD flavour, or the adapter). */
  description: string;
  threads: number;
}

const isNode = () => typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Cores of this host: os.availableParallelism in Node, navigator.hardwareConcurrency in a page. */
async function cores(): Promise<number> {
  if (isNode()) return (await import('node:os')).availableParallelism();
  return (globalThis.navigator as Navigator | undefined)?.hardwareConcurrency ?? 1;
}

/** Whether relaxed SIMD runs here; Node 20 needs a V8 flag, which is set at run time. */
async function relaxedHere(): Promise<boolean> {
  if (!relaxedSimdValid() && isNode()) {
    try {
      (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // flags frozen: plain SIMD it is
    }
  }
  return relaxedSimdValid();
}

/** Whether this host can share wasm memory between threads (a page must be cross-origin isolated). */
function sharedMemoryHere(): boolean {
  if (isNode()) return true;
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
}

function missingStep(m: Manifest, kind: string, batch: number): KilnError {
  const have = m.steps.map((s) => `${s.stage} ${s.batchSize}`).join(', ');
  return new KilnError('bundle', `this bundle has no ${kind} step at batch ${batch} (it holds: ${have}); it was compiled for ${m.counts.train} training and ${m.counts.test} test images`, undefined, 'compile it with --data naming the dataset it will train on, or use a dataset of the same size');
}

async function openWasm(bundle: StandaloneBundle, opts: OpenOptions): Promise<OpenedBackend> {
  const m = bundle.manifest;
  if (!m.wasm) throw new KilnError('bundle', 'this bundle holds no wasm modules', undefined, 'choose --backend webgpu, or compile it with --backend wasm or all');
  if (typeof WebAssembly !== 'object') throw new KilnError('backend', 'this host has no WebAssembly', undefined, 'use the webgpu backend');
  const simd = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
  if (!WebAssembly.validate(simd)) throw new KilnError('backend', 'this host\'s WebAssembly has no SIMD (fixed-width SIMD128), which every kiln kernel uses', undefined, 'use Node 20+ or a current browser, or the webgpu backend');
  const counts = [...new Set(m.wasm.modules.map((x) => x.threads))].sort((a, b) => a - b);
  const shared = sharedMemoryHere();
  let threads: number;
  if (opts.threads !== undefined) {
    if (!counts.includes(opts.threads)) throw new KilnError('usage', `this bundle holds wasm modules for ${counts.join(', ')} thread${counts.length > 1 ? 's' : ''}, not ${opts.threads}`, undefined, `pass one of those, or compile the bundle with --threads ${opts.threads}`);
    if (opts.threads > 1 && !shared) throw new KilnError('backend', `${opts.threads} threads need shared memory, which this page does not have: it is not cross-origin isolated`, undefined, 'serve the bundle with `kiln serve DIR` (it sends the COOP/COEP headers), or use 1 thread');
    threads = opts.threads;
  } else {
    const n = shared ? await cores() : 1;
    threads = counts.filter((c) => c <= n).at(-1) ?? counts[0]!;
  }
  const relaxed = opts.relaxed !== false && (await relaxedHere()) && m.wasm.modules.some((x) => x.relaxed && x.threads === threads);
  const mine = m.wasm.modules.filter((x) => x.threads === threads && x.relaxed === relaxed);
  // Every module is read (and checksummed) now, so a damaged bundle fails before training.
  const binaries = await Promise.all(mine.map((x) => bundle.file(x.file)));
  const steps = new Map<string, WasmStep>(mine.map((x, i) => [`${x.stage}/${x.batchSize}`, { ...x, binary: binaries[i]! }]));
  let host: WasmThreads | undefined;
  if (threads > 1) host = isNode() ? await (await import('../wasm/threads-node.ts')).nodeThreads() : (await import('../wasm/threads-browser.ts')).browserThreads();
  const load = (kind: 'train' | 'eval', batch: number) => {
    const s = steps.get(`${kind}/${batch}`);
    if (!s) throw missingStep(m, kind, batch);
    return s;
  };
  const compile = isNode() ? await (await import('../wasm/optimized-module.ts')).optimizingCompiler() : undefined;
  const backend = await WasmBackend.start(load, m.wasm.layout, m.training.seed, { threads, host, exampleSize: m.input.reduce((a, d) => a * d, 1), ...(compile ? { compile } : {}) });
  return { backend, threads, description: `wasm, ${threads} thread${threads > 1 ? 's' : ''}, ${relaxed ? 'relaxed SIMD' : 'SIMD128'}${!shared ? ' (no shared memory here: one thread)' : ''}` };
}

/** A WebGPU step as the bundle stores it: the dispatch plan with each shader named by file. */
export interface StoredWgslStep {
  readonly program: WgslStep['program'];
  readonly dispatches: readonly (Omit<WgslStepDispatch, 'code'> & { readonly shader: string })[];
}

async function openWebGpu(bundle: StandaloneBundle, opts: OpenOptions): Promise<OpenedBackend> {
  const m = bundle.manifest;
  if (!m.webgpu) throw new KilnError('bundle', 'this bundle holds no WebGPU shaders', undefined, 'choose the wasm backend, or compile it with --backend webgpu or all');
  const shaders = new Map<string, string>();
  const steps = new Map<string, WgslStep>();
  for (const s of m.webgpu.steps) {
    const stored = JSON.parse(await bundle.text(s.file)) as StoredWgslStep;
    const dispatches: WgslStepDispatch[] = [];
    for (const { shader, ...d } of stored.dispatches) {
      if (!shaders.has(shader)) shaders.set(shader, await bundle.text(shader));
      dispatches.push({ ...d, code: shaders.get(shader)! });
    }
    steps.set(`${s.stage}/${s.batchSize}`, { program: stored.program, dispatches });
  }
  const gpu: Gpu = isNode() ? await (await import('../webgpu/device.ts')).openGpu() : await (await import('../webgpu/gpu.ts')).openBrowserGpu();
  const load = (kind: 'train' | 'eval', batch: number) => {
    const s = steps.get(`${kind}/${batch}`);
    if (!s) throw missingStep(m, kind, batch);
    return s;
  };
  const backend = new WebGpuBackend(gpu, load, new Map(), m.training.batchSize, { depth: opts.depth });
  await backend.flush();
  return { backend, threads: 1, description: `webgpu, ${gpu.description}${gpu.software ? ' (a software rasterizer: correct but slow)' : ''}` };
}

/** Starts a backend on the bundle's compiled steps; its persistent tensors are zero until set. */
export async function openBackend(bundle: StandaloneBundle, opts: OpenOptions = {}): Promise<OpenedBackend> {
  const which = opts.backend ?? 'wasm';
  if (which !== 'wasm' && which !== 'webgpu') throw new KilnError('usage', `backend must be wasm or webgpu, got '${String(which)}'`);
  return which === 'wasm' ? openWasm(bundle, opts) : openWebGpu(bundle, opts);
}
