/// <reference types="@webgpu/types" />
import type { ProgramInstance } from './instance.ts';

export interface DispatchTime {
  readonly label: string;
  /** Median GPU time over the repeats, in microseconds. */
  readonly us: number;
}

/**
 * GPU time of each dispatch of a loaded program, from timestamp queries (the device needs the
 * 'timestamp-query' feature: Vulkan has it, compatibility mode on OpenGL does not). Replays the
 * step's dispatches on the program's arena, each in its own compute pass between two
 * timestamps, `repeats` times; the arena must hold a step's data already (run one first), and is
 * left as garbage for the next step's inputs to overwrite. Returns undefined without the feature.
 */
export async function profileDispatches(device: GPUDevice, inst: ProgramInstance, repeats = 5): Promise<DispatchTime[] | undefined> {
  if (!device.features.has('timestamp-query')) return undefined;
  const n = inst.dispatches.length;
  const count = 2 * n;
  const querySet = device.createQuerySet({ type: 'timestamp', count });
  const resolve = device.createBuffer({ size: 8 * count, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 8 * count, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const samples: number[][] = inst.dispatches.map(() => []);
  try {
    for (let r = 0; r < repeats; r++) {
      const enc = device.createCommandEncoder({ label: 'profile' });
      inst.dispatches.forEach((d, i) => {
        const pass = enc.beginComputePass({ label: d.label, timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup, d.usesStep ? [0] : []);
        pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        pass.end();
      });
      enc.resolveQuerySet(querySet, 0, count, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 8 * count);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(read.getMappedRange().slice(0));
      read.unmap();
      for (let i = 0; i < n; i++) samples[i]!.push(Number(t[2 * i + 1]! - t[2 * i]!) / 1000);
    }
  } finally {
    querySet.destroy();
    resolve.destroy();
    read.destroy();
  }
  return inst.dispatches.map((d, i) => {
    const s = samples[i]!.sort((a, b) => a - b);
    return { label: d.label, us: s[Math.floor(s.length / 2)]! };
  });
}
