import { afterEach, describe, expect, it, vi } from 'vitest';
import { StandaloneBundle, type BundleFiles } from '../../../src/runtime/standalone/bundle.ts';
import { STANDALONE_FORMAT, STANDALONE_VERSION } from '../../../src/runtime/standalone/manifest.ts';
import { openBackend } from '../../../src/runtime/standalone/open.ts';

/** A bundle held in memory: a manifest with wasm modules for 1 and 2 threads and no files behind them. */
function memoryBundle(extra: Record<string, unknown> = {}): Promise<StandaloneBundle> {
  const module = (threads: number) => ({ file: `wasm/t${threads}.wasm`, stage: 'train', batchSize: 8, threads, relaxed: false });
  const manifest = {
    format: STANDALONE_FORMAT,
    version: STANDALONE_VERSION,
    name: 'M',
    file: 'm.ts',
    input: [1, 2, 2],
    classes: 2,
    training: { seed: 0, batchSize: 8 },
    state: [],
    params: 'params.safetensors',
    steps: [{ stage: 'train', batchSize: 8 }],
    counts: { train: 8, test: 8 },
    files: {},
    wasm: { layout: { state: [], arenaBase: 1024 }, modules: [module(1), module(2)] },
    ...extra,
  };
  const files: BundleFiles = {
    read: async (path) => (path === 'manifest.json' ? new TextEncoder().encode(JSON.stringify(manifest)) : undefined),
    where: (path) => `mem/${path}`,
  };
  return StandaloneBundle.load(files);
}

afterEach(() => vi.restoreAllMocks());

describe('opening a standalone bundle refuses what the host cannot run', () => {
  it('a WebAssembly without SIMD', async () => {
    vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    await expect(openBackend(await memoryBundle())).rejects.toThrow(/this host's WebAssembly has no SIMD \(fixed-width SIMD128\), which every kiln kernel uses/);
  });

  it('a thread count it holds no modules for', async () => {
    await expect(openBackend(await memoryBundle(), { threads: 4 })).rejects.toThrow('this bundle holds wasm modules for 1, 2 threads, not 4');
  });

  it('a backend it holds nothing for', async () => {
    await expect(openBackend(await memoryBundle(), { backend: 'webgpu' })).rejects.toThrow('this bundle holds no WebGPU shaders');
    await expect(openBackend(await memoryBundle({ wasm: undefined }))).rejects.toThrow('this bundle holds no wasm modules');
  });

  it('a module whose file is not listed in the manifest', async () => {
    await expect(openBackend(await memoryBundle(), { threads: 1 })).rejects.toThrow('mem/wasm/t1.wasm is not listed in the bundle\'s manifest.json');
  });
});
