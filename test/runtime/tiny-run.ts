import { graphFor } from '../../src/cli/graphs.ts';
import { nn } from '../../src/frontend/api.ts';
import type { LoadedModel } from '../../src/frontend/loader.ts';
import { resolveTraining } from '../../src/frontend/training-options.ts';
import { memoizeSteps } from '../../src/runtime/backend.ts';
import type { RunIdentity } from '../../src/runtime/checkpoint.ts';
import type { Dataset } from '../../src/runtime/data/dataset.ts';
import { initDraws } from '../../src/runtime/init.ts';
import type { TrainConfig } from '../../src/runtime/trainer.ts';

// A small run shared by the trainer tests of every backend. The model uses every source of
// step-to-step state: batch-norm buffers, dropout masks (keyed by step), Adam moments, and
// shuffled epochs with a short last batch (150 = 4·32 + 22).

export const training = resolveTraining({ input: [1, 6, 6], batchSize: 32, epochs: 2, optimizer: { type: 'adam', lr: 0.01 } }, { file: 'test', line: 1, col: 1 });
const create = () => new nn.Sequential(new nn.Flatten(), new nn.Linear(36, 16), new nn.BatchNorm1d(16), new nn.ReLU(), new nn.Dropout(0.3), new nn.Linear(16, 3));
export const loaded: LoadedModel = { file: 'test', name: 'Tiny', model: create(), training, create, code: '', checked: Promise.resolve() };

function split(count: number, salt: number) {
  const images = Uint8Array.from({ length: count * 36 }, (_, i) => (i * 37 + salt * 11 + ((i * i) % 13)) % 256);
  const labels = Uint8Array.from({ length: count }, (_, i) => (images[i * 36 + 7]! + images[i * 36 + 20]!) % 3);
  return { images, labels, count };
}
export const data: Dataset = { name: 'synthetic', train: split(150, 1), test: split(40, 2), numClasses: 3, imageShape: [1, 6, 6], normalize: { mean: [0.5], std: [0.25] } };
export const identity: RunIdentity = { model: 'Tiny', seed: 7, shuffle: true, batchSize: 32, trainCount: 150, optimizer: 'adam', augment: 'none' };

/** The model's train and eval graphs, built once per batch size. */
export const steps = memoizeSteps({ train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: training.optimizer }), eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer: training.optimizer }) });
export const cfg: TrainConfig = { epochs: 2, batchSize: 32, seed: 7, shuffle: true, initDraws: initDraws(steps.train(32).state), normalize: { mean: [0.5], std: [0.25] }, evalBatchSize: 16 };
