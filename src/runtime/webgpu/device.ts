/// <reference types="@webgpu/types" />
import { KilnError } from '../../ir/errors.ts';
import { isSoftware, requestKilnDevice, type Gpu } from './gpu.ts';

export type { Gpu } from './gpu.ts';

type DawnBackend = 'vulkan' | 'opengl';

/**
 * Whether the Vulkan loader is installed. Dawn prints a warning to stderr when it tries Vulkan
 * without one, so it is looked for first.
 */
async function hasVulkanLoader(): Promise<boolean> {
  // Imported here: kiln-runtime.mjs, which a page loads too, has no static `node:` import.
  const { existsSync } = await import('node:fs');
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  return process.platform !== 'linux' || dirs.some((d) => existsSync(`${d}/libvulkan.so.1`));
}

/** Dawn instances of open devices, held so that they are not collected (see Gpu.instance). */
const KEEP = new Set<GPU>();

function describe(adapter: GPUAdapter, backend: DawnBackend, compat: boolean): string {
  const i = adapter.info;
  const name = [i.device, i.vendor].find((s) => s && s.length) ?? 'unknown adapter';
  const driver = i.description && i.description !== name ? `, ${i.description}` : '';
  return `${name} (Dawn ${backend === 'vulkan' ? 'Vulkan' : 'OpenGL'}${compat ? ' compatibility mode' : ''}${driver})`;
}

export interface OpenGpuOptions {
  /** Force one Dawn backend; default: Vulkan when a loader is installed and it finds a hardware adapter, else OpenGL. Also KILN_WEBGPU_BACKEND. */
  readonly backend?: DawnBackend;
}

/**
 * The best WebGPU device Dawn offers here: a hardware adapter through Vulkan first; otherwise
 * Dawn's OpenGL backend in compatibility mode, which on a machine without a GPU is Mesa's
 * llvmpipe through surfaceless EGL (README, WebGPU: the packages it needs). A missing package or adapter is a KilnError
 * that names what to install.
 */
export async function openGpu(opts: OpenGpuOptions = {}): Promise<Gpu> {
  let mod: { create(o: string[]): GPU; globals: object };
  try {
    mod = (await import('webgpu')) as never;
  } catch (e) {
    throw new KilnError('backend', `the webgpu backend needs the 'webgpu' npm package (Dawn for Node), which did not load: ${(e as Error).message}`, undefined, "install it with 'npm install webgpu' (an optional dependency of kiln; prebuilt for linux-x64, linux-arm64, macOS and Windows)");
  }
  Object.assign(globalThis, mod.globals);
  // Mesa's EGL needs a platform without a display server; must be set before Dawn loads EGL.
  process.env.EGL_PLATFORM ??= 'surfaceless';

  const forced = opts.backend ?? (process.env.KILN_WEBGPU_BACKEND as DawnBackend | undefined);
  if (forced !== undefined && forced !== 'vulkan' && forced !== 'opengl') throw new KilnError('usage', `KILN_WEBGPU_BACKEND must be 'vulkan' or 'opengl', got '${forced}'`);
  const tries: { backend: DawnBackend; compat: boolean }[] = [];
  if (forced !== 'opengl' && (forced === 'vulkan' || (await hasVulkanLoader()))) tries.push({ backend: 'vulkan', compat: false });
  if (forced !== 'vulkan') tries.push({ backend: 'opengl', compat: true });

  let fallback: { gpu: GPU; adapter: GPUAdapter; backend: DawnBackend; compat: boolean } | undefined;
  for (const t of tries) {
    const gpu = mod.create([`backend=${t.backend}`]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', ...(t.compat ? { featureLevel: 'compatibility' } : {}) });
    if (!adapter) continue;
    const soft = isSoftware(adapter);
    if (!soft) return open(gpu, adapter, t.backend, t.compat, false);
    fallback ??= { gpu, adapter, backend: t.backend, compat: t.compat };
  }
  if (fallback) return open(fallback.gpu, fallback.adapter, fallback.backend, fallback.compat, true);
  throw new KilnError(
    'backend',
    'no WebGPU adapter found: Dawn found neither a Vulkan device nor an OpenGL one',
    undefined,
    'on a GPU machine install the Vulkan loader and driver (Debian: libvulkan1 and the vendor driver; NVIDIA containers need NVIDIA_DRIVER_CAPABILITIES=compute,graphics); without a GPU install Mesa for llvmpipe: apt-get install libegl1 libegl-dev libegl-mesa0 libgl1-mesa-dri (Dawn loads libEGL.so, which only libegl-dev provides)',
  );
}

async function open(instance: GPU, adapter: GPUAdapter, backend: DawnBackend, compat: boolean, software: boolean): Promise<Gpu> {
  const device = await requestKilnDevice(adapter);
  KEEP.add(instance);
  device.lost.then(() => KEEP.delete(instance));
  return { instance, device, adapter, description: describe(adapter, backend, compat), software };
}
