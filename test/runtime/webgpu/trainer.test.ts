import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncState, type Backend } from '../../../src/runtime/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../../../src/runtime/checkpoint-file.ts';
import { initialState } from '../../../src/runtime/init.ts';
import { ReferenceBackend } from '../../../src/runtime/reference/backend.ts';
import { train } from '../../../src/runtime/trainer.ts';
import { openGpu, type Gpu } from '../../../src/runtime/webgpu/device.ts';
import { WebGpuBackend } from '../../../src/runtime/webgpu/backend.ts';
import { compilingWgslLoader, deviceTarget } from '../../../src/runtime/webgpu/compile.ts';
import { cfg, data, identity, steps } from '../tiny-run.ts';

// The trainer on the queued (webgpu) path: steps grouped `depth` at a time and read back once per
// group, groups cut at checkpoints, evaluation batched the same way, state read for checkpoints
// only after a sync. The model has every source of step-to-step state (batch-norm buffers,
// dropout keyed by step, Adam moments) and a short last batch (150 = 4·32 + 22), so train(32),
// train(22) and eval(16), eval(8) programs pass the state among themselves on the device
// (the run is test/runtime/tiny-run.ts, shared with the reference trainer tests).

let gpu: Gpu | undefined;
let why: string | undefined;
const dir = mkdtempSync(join(tmpdir(), 'kiln-webgpu-trainer-'));
beforeAll(async () => {
  try {
    gpu = await openGpu();
  } catch (e) {
    // CI installs what Dawn needs (.ci/run): there, no adapter is a failure, not a skip.
    if (process.env.KILN_REQUIRE_WEBGPU) throw e;
    why = (e as Error).message;
  }
});
afterAll(() => {
  gpu?.device.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function fresh(depth = 3): WebGpuBackend {
  return new WebGpuBackend(gpu!, compilingWgslLoader(steps, 7, deviceTarget(gpu!)), initialState(steps.train(32).state, 7), 32, { depth, sharedDevice: true });
}

async function dump(b: Backend) {
  await syncState(b);
  return Object.fromEntries([...b.stateShapes.keys()].map((n) => [n, Array.from(b.getState(n))]));
}

describe('trainer on the webgpu backend', () => {
  it('trains and logs every step, the short last batch included, like the reference backend', async () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const log: string[] = [];
    const b = fresh();
    const seen: number[] = [];
    const r = await train(b, data, { ...cfg, log: (line) => log.push(line) }, { onStep: (s) => seen.push(s.step) });
    expect(r.steps).toBe(10);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const lines = log.map((l) => JSON.parse(l));
    const ref = new ReferenceBackend(steps, initialState(steps.train(32).state, 7), 32, 7);
    const refLog: string[] = [];
    const rr = await train(ref, data, { ...cfg, log: (line) => refLog.push(line) });
    const refLines = refLog.map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.epoch, l.step])).toEqual(refLines.map((l) => [l.epoch, l.step]));
    // Ten Adam steps at lr 0.01 compound rounding differences (see the parity suite); the losses
    // still agree to 1e-3, and so do the test metrics.
    lines.forEach((l, i) => expect(Math.abs(l.loss - refLines[i].loss) / refLines[i].loss).toBeLessThan(1e-3));
    expect(Math.abs(r.testLoss - rr.testLoss) / rr.testLoss).toBeLessThan(1e-3);
    expect(r.testAccuracy).toBe(rr.testAccuracy);
    b.dispose();
  });

  it('getState refuses to answer between a step and a sync', async () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const b = fresh();
    b.queueTrainStep(new Float32Array(32 * 36), new Float32Array(32), 0);
    await b.flush();
    const name = [...b.stateShapes.keys()][0]!;
    expect(() => b.getState(name)).toThrow(/sync/);
    await b.sync();
    expect(b.getState(name).length).toBe(16 * 36);
    b.dispose();
  });

  it.each([3, 5, 7])('a run interrupted after step %i and resumed from its checkpoint ends bitwise equal', async (stopAt) => {
    if (why) return void console.warn(`skipped: ${why}`);
    const full = fresh();
    await train(full, data, cfg);

    const first = fresh();
    let n = 0;
    const part = await train(first, data, { ...cfg, checkpoint: { every: 4, save: () => undefined } }, { onStep: () => n++, stopRequested: () => n >= stopAt });
    expect(part.interrupted).toBe(true);
    await syncState(first);
    const file = join(dir, `ckpt-${stopAt}.safetensors`);
    saveCheckpoint(file, first, part.position, identity);

    const second = fresh(4);
    const start = loadCheckpoint(file, second, identity);
    expect(start.step).toBe(part.position.step);
    const rest = await train(second, data, cfg, {}, start);
    expect(rest.steps).toBe(10);
    expect(await dump(second)).toEqual(await dump(full));
    for (const b of [full, first, second]) b.dispose();
  });
});
