import type { Target } from '../../ir/target.ts';

/**
 * WebGPU's default limit on storage buffers per shader stage: what every adapter offers,
 * compatibility mode (Dawn on OpenGL, as on this machine's llvmpipe) included.
 */
export const COMPAT_STORAGE_BUFFERS = 8;

/**
 * The webgpu backend with an adapter's storage-buffer limit (each slice a kernel reads or writes
 * is one binding). Bytes cost 2 flops, the wasm backend's measured balance, not the GPU's own
 * (≈ 15 on an H100's HBM, which would recompute more): both choices cost microseconds against a
 * dispatch there, and none was measured to be faster, so the balance stays where it makes the
 * programs this backend ran before it had a target of its own.
 */
export function webgpuTarget(maxStorageBuffers: number): Target {
  return { name: `webgpu (${maxStorageBuffers} storage buffers)`, maxStorageBuffers, flopsPerByte: 2 };
}

/** A Program compiled for it runs on every adapter: what bundles and `kiln ir` use, having no device. */
export const WEBGPU_PORTABLE = webgpuTarget(COMPAT_STORAGE_BUFFERS);
