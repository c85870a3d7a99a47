import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Backend } from '../../src/runtime/backend.ts';
import { augmentIdentity, checkpointBytes, restoreCheckpoint, restoreWeights, weightsBytes } from '../../src/runtime/checkpoint.ts';
import { loadCheckpoint, saveCheckpoint } from '../../src/runtime/checkpoint-file.ts';
import { initialState } from '../../src/runtime/init.ts';
import { writeSafetensors } from '../../src/runtime/safetensors-file.ts';
import { ReferenceBackend } from '../../src/runtime/reference/backend.ts';
import { runSteps, train, type EpochInfo } from '../../src/runtime/trainer.ts';
import { epochAugment } from '../../src/runtime/data/augment.ts';
import { fillBatch } from '../../src/runtime/data/dataset.ts';
import { epochOrder } from '../../src/runtime/data/shuffle.ts';
import { epochWindows, textDataset } from '../../src/runtime/data/text.ts';
import { cfg, data, identity, steps } from './tiny-run.ts';

function freshBackend(): ReferenceBackend {
  return new ReferenceBackend(steps, initialState(steps.train(32).state, 7), 32, 7);
}

const dump = (b: Backend) => Object.fromEntries([...b.stateShapes.keys()].map((n) => [n, Array.from(b.getState(n))]));
const dir = mkdtempSync(join(tmpdir(), 'kiln-trainer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('trainer', () => {
  it('trains every sample, the short last batch included, and logs each step', async () => {
    const log: string[] = [];
    const b = freshBackend();
    const steps: number[] = [];
    const r = await train(b, data, { ...cfg, log: (line) => log.push(line) }, { onStep: (s) => steps.push(s.step) });
    expect(r.steps).toBe(10);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(log.every((l) => l.endsWith('}\n'))).toBe(true);
    const lines = log.map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.epoch, l.step])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((s) => [s < 5 ? 0 : 1, s]));
    expect(Number.isFinite(r.testAccuracy) && Number.isFinite(r.testLoss)).toBe(true);
  });

  it('a batch larger than the split is all of it (PyTorch\'s DataLoader), with buffers of its size', async () => {
    // Buffers of --batch-size 1000000000 were a RangeError: "Invalid typed array length".
    const huge = 1_000_000_000;
    const big = new ReferenceBackend(steps, initialState(steps.train(huge).state, 7), huge, 7);
    const whole = new ReferenceBackend(steps, initialState(steps.train(150).state, 7), 150, 7);
    const a = await train(big, data, { ...cfg, batchSize: huge, evalBatchSize: huge });
    const b = await train(whole, data, { ...cfg, batchSize: 150, evalBatchSize: 40 });
    expect(a.steps).toBe(2);
    expect([a.trainLoss, a.testLoss, a.testAccuracy]).toEqual([b.trainLoss, b.testLoss, b.testAccuracy]);
  });

  it('tells each epoch where it ends: its batch count, or earlier under --max-steps', async () => {
    const ends: [number, number, number][] = [];
    await train(freshBackend(), data, { ...cfg, maxSteps: 7 }, { onEpochStart: (e, end, first) => ends.push([e, end, first]) });
    expect(ends).toEqual([
      [0, 5, 0],
      [1, 2, 0],
    ]);
  });

  it.each([3, 5, 7])('a run interrupted after step %i and resumed from its checkpoint ends bitwise equal, its epoch lines too', async (stopAt) => {
    const full = freshBackend();
    const fullEpochs: EpochInfo[] = [];
    await train(full, data, cfg, { onEpochEnd: (e) => fullEpochs.push(e) });

    const first = freshBackend();
    let n = 0;
    const part = await train(first, data, cfg, { onStep: () => n++, stopRequested: () => n >= stopAt });
    expect(part.interrupted).toBe(true);
    const file = join(dir, `ckpt-${stopAt}.safetensors`);
    saveCheckpoint(file, first, part.position, identity);

    const second = freshBackend();
    const start = loadCheckpoint(file, second, identity);
    expect(start.step).toBe(stopAt);
    const restEpochs: EpochInfo[] = [];
    const rest = await train(second, data, cfg, { onEpochEnd: (e) => restEpochs.push(e) }, start);
    expect(rest.steps).toBe(10);
    expect(dump(second)).toEqual(dump(full));
    // The epoch the run was stopped in reports its train loss over all its batches, not only
    // those after the resume (the checkpoint carries the epoch's sums).
    const strip = (es: EpochInfo[]) => es.map(({ seconds: _, ...e }) => e);
    expect(strip(restEpochs)).toEqual(strip(fullEpochs).slice(-restEpochs.length));
  });

  describe('with augmentation', () => {
    const augmented = { ...cfg, augment: { randomCrop: { size: 6, padding: 2 }, horizontalFlip: 0.5 } };
    const augIdentity = { ...identity, augment: augmentIdentity(augmented.augment) };

    it.each([3, 7])('resumed from a checkpoint after step %i, trains on the same augmented batches bitwise', async (stopAt) => {
      const full = freshBackend();
      const fullEpochs: EpochInfo[] = [];
      await train(full, data, augmented, { onEpochEnd: (e) => fullEpochs.push(e) });

      const first = freshBackend();
      let n = 0;
      const part = await train(first, data, augmented, { onStep: () => n++, stopRequested: () => n >= stopAt });
      const file = join(dir, `aug-${stopAt}.safetensors`);
      saveCheckpoint(file, first, part.position, augIdentity);
      const second = freshBackend();
      const restEpochs: EpochInfo[] = [];
      await train(second, data, augmented, { onEpochEnd: (e) => restEpochs.push(e) }, loadCheckpoint(file, second, augIdentity));
      expect(dump(second)).toEqual(dump(full));
      const strip = (es: EpochInfo[]) => es.map(({ seconds: _, ...e }) => e);
      expect(strip(restEpochs)).toEqual(strip(fullEpochs).slice(-restEpochs.length));
    });

    it('changes the training batches but never the evaluation, and a checkpoint names the augmentation it ran with', async () => {
      const seen: Float32Array[] = [];
      const spy = (b: ReferenceBackend) => {
        const step = b.trainStep.bind(b);
        b.trainStep = (x, labels, s) => (seen.push(x.slice()), step(x, labels, s));
        return b;
      };
      await train(spy(freshBackend()), data, { ...cfg, maxSteps: 1 });
      await train(spy(freshBackend()), data, { ...augmented, maxSteps: 1 });
      expect(seen[1]).not.toEqual(seen[0]);
      // The first batch is the epoch's order through epoch 0's draws for the run's seed.
      const x = new Float32Array(32 * 36);
      const order = epochOrder(data.train.count, 0, { seed: cfg.seed, initDraws: cfg.initDraws });
      fillBatch(data.train, order, 0, 32, x, new Float32Array(32), cfg.normalize, epochAugment(augmented.augment, data.imageShape, cfg.seed, 0));
      expect(seen[1]).toEqual(x);
      // Evaluation of the same weights is the same with and without augmentation.
      const a = await train(freshBackend(), data, { ...cfg, maxSteps: 0 });
      const b = await train(freshBackend(), data, { ...augmented, maxSteps: 0 });
      expect([b.testLoss, b.testAccuracy]).toEqual([a.testLoss, a.testAccuracy]);
      const file = join(dir, 'aug-identity.safetensors');
      saveCheckpoint(file, freshBackend(), { step: 1, epoch: 0, batch: 1 }, augIdentity);
      expect(() => loadCheckpoint(file, freshBackend(), identity)).toThrow('augment: checkpoint has {"randomCrop":{"size":6,"padding":2},"horizontalFlip":0.5}, this run has none');
    });
  });

  it('refuses a checkpoint from a different run, naming each difference', () => {
    const b = freshBackend();
    const file = join(dir, 'other.safetensors');
    saveCheckpoint(file, b, { step: 1, epoch: 0, batch: 1 }, identity);
    expect(() => loadCheckpoint(file, b, { ...identity, seed: 8, batchSize: 16 })).toThrow(/seed: checkpoint has 7, this run has 8\n\s+batchSize: checkpoint has 32, this run has 16/);
  });

  it('checkpoints and weights round-trip as bytes, with the file functions\' layout', async () => {
    const b = freshBackend();
    await train(b, data, { ...cfg, maxSteps: 3 });
    const position = { step: 3, epoch: 0, batch: 3 };
    const bytes = checkpointBytes(b, position, identity);
    const file = join(dir, 'bytes.safetensors');
    saveCheckpoint(file, b, position, identity);
    expect(Buffer.from(bytes).equals(readFileSync(file))).toBe(true);
    const c = freshBackend();
    expect(restoreCheckpoint(bytes, 'upload', c, identity)).toEqual(position);
    expect(dump(c)).toEqual(dump(b));
    expect(() => restoreCheckpoint(bytes, 'upload', c, { ...identity, seed: 8 })).toThrow(/^upload was written by a different run/);
    const names = [...b.stateShapes.keys()].slice(0, 3);
    const w = freshBackend();
    restoreWeights(weightsBytes(b, names), 'weights', w, names);
    for (const n of names) expect(Array.from(w.getState(n))).toEqual(Array.from(b.getState(n)));
  });

  it('runs where setImmediate is missing, as in a browser', async () => {
    const expected = await train(freshBackend(), data, cfg);
    vi.stubGlobal('setImmediate', undefined);
    vi.resetModules();
    try {
      const { train: trainNoImmediate } = await import('../../src/runtime/trainer.ts');
      expect(trainNoImmediate).not.toBe(train);
      const r = await trainNoImmediate(freshBackend(), data, cfg);
      expect(r.steps).toBe(10);
      expect(r.testLoss).toBe(expected.testLoss);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('refuses a checkpoint of an earlier version, whose data order differs', () => {
    const file = join(dir, 'v1.safetensors');
    writeSafetensors(file, {}, { 'kiln.checkpoint': JSON.stringify({ version: 1, step: 1, epoch: 0, batch: 1, ...identity }) });
    expect(() => loadCheckpoint(file, freshBackend(), identity)).toThrow(/version 1 checkpoint; this kiln resumes version 2/);
  });
});

describe('runSteps', () => {
  it('lists the full and short last batches of training and evaluation, once each', () => {
    expect(runSteps(60000, 10000, 64, 1000)).toEqual([['train', 64], ['train', 32], ['eval', 1000]]);
    expect(runSteps(10, 5, 64, 1000)).toEqual([['train', 10], ['eval', 5]]);
    expect(runSteps(256, 100, 32, 30)).toEqual([['train', 32], ['eval', 30], ['eval', 10]]);
  });
});

describe('trainer on text', () => {
  /** Records every step's inputs; its logits score nothing, so each step's loss is ln 256. */
  function recorder(): Backend & { fed: { x: number[]; labels: number[] }[]; evaluated: number[][] } {
    const fed: { x: number[]; labels: number[] }[] = [];
    const evaluated: number[][] = [];
    const result = (labels: Float32Array) => ({ loss: Math.log(256), logits: new Float32Array(labels.length * 256) });
    return {
      name: 'recorder',
      stateShapes: new Map(),
      fed,
      evaluated,
      setState: () => {},
      getState: () => new Float32Array(),
      trainStep(x, labels) {
        fed.push({ x: Array.from(x), labels: Array.from(labels) });
        return result(labels);
      },
      evalStep(x, labels) {
        evaluated.push(Array.from(x));
        return result(labels);
      },
      prepare: () => {},
      dispose: () => {},
    };
  }
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
  const text = textDataset(bytes, 'ramp.txt', 'ramp.txt', { context: 5, valFraction: 0.1 });
  const run = { ...cfg, batchSize: 3, evalBatchSize: 4, epochs: 2, shuffle: false };

  it('--no-shuffle: row i of step s is the window at byte (s·B + i)·T, its labels the bytes after; each epoch the same', async () => {
    const b = recorder();
    const r = await train(b, text, { ...run, stepsPerEpoch: 4 });
    expect(r.steps).toBe(8);
    for (let s = 0; s < 8; s++) {
      const { x, labels } = b.fed[s]!;
      for (let i = 0; i < 3; i++) {
        const at = ((s % 4) * 3 + i) * 5;
        expect(x.slice(i * 5, i * 5 + 5)).toEqual(Array.from(bytes.subarray(at, at + 5)));
        expect(labels.slice(i * 5, i * 5 + 5)).toEqual(Array.from(bytes.subarray(at + 1, at + 6)));
      }
    }
    // The held-out 100 bytes: 19 consecutive windows of 5 in batches of 4 (the last of 3), after each epoch.
    expect(b.evaluated.map((x) => x.length)).toEqual([20, 20, 20, 20, 15, 20, 20, 20, 20, 15]);
    expect(b.evaluated[1]!.slice(0, 5)).toEqual(Array.from(bytes.subarray(920, 925)));
    expect(r.testLoss).toBeCloseTo(Math.log(256), 12);
  });

  it('shuffled: an epoch is stepsPerEpoch batches of seeded windows, by default enough to cover the split once', async () => {
    const b = recorder();
    const r = await train(b, text, { ...run, shuffle: true, epochs: 1 });
    // floor((900 - 1) / (3 · 5)) = 59 steps.
    expect(r.steps).toBe(59);
    const starts = epochWindows(900, 5, 59 * 3, 0, { seed: run.seed, initDraws: run.initDraws });
    b.fed.forEach(({ x }, s) => [0, 1, 2].forEach((i) => expect(x[i * 5]).toBe(bytes[starts[s * 3 + i]!])));
  });
});
