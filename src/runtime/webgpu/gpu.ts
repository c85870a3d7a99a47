/// <reference types="@webgpu/types" />
import { WG } from '../../codegen/wgsl/grid.ts';
import { KilnError } from '../../ir/errors.ts';

export interface Gpu {
  /**
   * The instance the adapter came from: it must outlive the device. dawn.node frees its instance
   * when the JS object is collected, and a device whose instance is gone crashes the process (a
   * mutex or futex assertion) at the next call that waits.
   */
  readonly instance: GPU;
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  /** Which adapter, in words: the driver's description and the backend. */
  readonly description: string;
  /** True on a software rasterizer (llvmpipe, lavapipe, SwiftShader): fine for tests, slow. */
  readonly software: boolean;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

export function isSoftware(adapter: GPUAdapter): boolean {
  // Chromium's SwiftShader says so only in `architecture` ('swiftshader', vendor 'google', no
  // device or description) and in isFallbackAdapter.
  const i = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  return i.isFallbackAdapter === true || SOFTWARE.test(`${i.description} ${i.device} ${i.vendor} ${i.architecture}`);
}

/** A device with the limits kiln's shaders need, or a KilnError naming the one the adapter lacks. */
export async function requestKilnDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const l = adapter.limits;
  if (l.maxComputeInvocationsPerWorkgroup < WG || l.maxComputeWorkgroupSizeX < WG) throw new KilnError('backend', `the WebGPU adapter allows ${l.maxComputeInvocationsPerWorkgroup} invocations per workgroup; kiln's kernels use ${WG}`);
  // The adapter's own maxima for what kernels bind (one storage buffer per slice), and core
  // WebGPU's 256-invocation workgroups, which compatibility mode lowers to 128 by default.
  return adapter.requestDevice({
    // For per-dispatch GPU times (profile.ts) where the adapter has them (Vulkan; not OpenGL).
    requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
    requiredLimits: {
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeInvocationsPerWorkgroup: WG,
      maxComputeWorkgroupSizeX: WG,
    },
  });
}

/** The page's WebGPU (navigator.gpu, also in workers), or a KilnError saying it is missing. */
export async function openBrowserGpu(): Promise<Gpu> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new KilnError('backend', 'this browser has no WebGPU (navigator.gpu is undefined)', undefined, 'use the wasm backend, or a browser with WebGPU (Chrome 113+, or Chromium with --enable-unsafe-webgpu)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new KilnError('backend', 'WebGPU is present but offers no adapter here', undefined, 'use the wasm backend; on Linux, Chromium needs --enable-unsafe-webgpu');
  const device = await requestKilnDevice(adapter);
  const i = adapter.info;
  const name = i.device || [i.vendor, i.architecture].filter((s) => s).join(' ') || 'WebGPU adapter';
  return { instance: gpu, device, adapter, description: `${name} (browser WebGPU${i.description ? `, ${i.description}` : ''})`, software: isSoftware(adapter) };
}
