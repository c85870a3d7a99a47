import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { loadDataset } from '../runtime/data/dataset-file.ts';
import { bundledDataset, loadBundle, type KilnModel } from '../runtime/standalone/index.ts';
import { choice, normalizeFlag, positiveInt } from './options.ts';
import type { TrainRun } from './train-run.ts';

/** Flags a standalone bundle takes: where the data comes from and what runs it; the model and its optimizer are fixed. */
export interface StandaloneRunFlags {
  data?: string;
  normalize?: string;
  labels?: string;
  backend?: string;
  threads?: string;
  epochs?: string;
}

/** Whether `path` is a standalone bundle folder (`kiln compile --standalone`). */
export function isStandaloneDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory() && existsSync(join(path, 'manifest.json'));
}

/**
 * Opens a standalone bundle for a run: its data (the bundle's, or --data), its compiled steps on
 * the backend asked for, its initial weights. For `kiln train DIR`, `kiln eval DIR` and the
 * bundle's own train.mjs. Dispose the model when done.
 */
export async function openStandaloneRun(dir: string, flags: StandaloneRunFlags & Record<string, unknown>, command: string): Promise<{ run: TrainRun; model: KilnModel }> {
  const fixed = (['batchSize', 'lr', 'optimizer', 'momentum', 'weightDecay', 'seed'] as const).filter((k) => flags[k] !== undefined);
  if (fixed.length) {
    const names = fixed.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
    throw new KilnError('usage', `${names}: fixed when the bundle was compiled (its steps and initial weights depend on them)`, undefined, 'compile the model again with those flags: kiln compile MODEL.ts --standalone ...');
  }
  const backend = choice('--backend', flags.backend ?? 'wasm', ['wasm', 'webgpu'] as const);
  const threads = flags.threads === undefined ? undefined : positiveInt('--threads', flags.threads);
  const epochs = flags.epochs === undefined ? undefined : positiveInt('--epochs', flags.epochs);
  const bundle = await loadBundle(dir);
  const m = bundle.manifest;
  const normalize = flags.normalize === undefined ? m.training.normalize : normalizeFlag('--normalize', flags.normalize);
  const labels = flags.labels === undefined ? undefined : choice('--labels', flags.labels, ['fine', 'coarse'] as const);
  const fromBundle = flags.data === undefined || flags.data === 'bundle';
  if (fromBundle && labels) throw new KilnError('usage', '--labels applies to the data of --data DIR; the bundle carries its dataset with its labels chosen', undefined, 'drop --labels, or give CIFAR-100\'s folder with --data');
  const data = fromBundle ? await bundledDataset(bundle) : loadDataset(flags.data!, { normalize, labels });
  const model = await bundle.open({ backend, threads });
  process.stderr.write(`kiln: ${model.description}\n`);
  return {
    model,
    run: {
      name: m.name,
      file: m.file,
      backend: model.backend,
      data,
      training: { ...m.training, epochs: epochs ?? m.training.epochs },
      normalize,
      augment: m.training.augment,
      initDraws: m.initDraws,
      evalBatchSize: m.training.evalBatchSize,
      modelState: model.modelState,
      prepared: 'loaded',
      command,
    },
  };
}
