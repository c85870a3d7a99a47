/**
 * kiln-runtime.mjs: what runs a compiled model with no compiler present, in Node 20+ and in
 * current browsers. `kiln compile --standalone` builds this module with esbuild into every
 * bundle folder. It carries no binaryen, ts-morph, esbuild or TypeScript, and no static `node:`
 * import (Node's modules are imported where a Node-only path needs them).
 *
 *   const bundle = await loadBundle('./simple-cnn.kiln');   // a folder, or a URL in a page
 *   const model = await bundle.open({ backend: 'wasm' });   // or 'webgpu'
 *   const data = await bundledDataset(bundle);
 *   await model.train(data, { epochs: 1, onStep: (s) => console.log(s.step, s.loss) });
 *   const probs = await model.predict(images);             // normalised [n, ...input] → [n, classes]
 *   const weights = await model.saveWeights();              // safetensors bytes
 *   model.dispose();
 */
import { StandaloneBundle, type BundleFiles } from './bundle.ts';
import { KilnModel } from './model.ts';
import type { OpenOptions } from './open.ts';

/** A bundle with `open()`: a folder path in Node, a URL anywhere. */
export async function loadBundle(location: string | URL | BundleFiles): Promise<StandaloneBundle & { open(opts?: OpenOptions): Promise<KilnModel> }> {
  const b = await StandaloneBundle.load(location);
  return Object.assign(b, { open: (opts?: OpenOptions) => KilnModel.open(b, opts) });
}

export { StandaloneBundle, KilnModel };
export type { BundleFiles, OpenOptions };
export type { TrainOptions } from './model.ts';
export type { Manifest } from './manifest.ts';
export { bundledDataset, datasetFromFiles, gunzip, type DataFiles } from './data.ts';
export { KilnError } from '../../ir/errors.ts';
// What train.mjs shares with kiln's CLI (src/cli/train-run.ts), so that Node's copy of the
// runtime is this module's, not a second one bundled into train.mjs.
export * from '../backend.ts';
export * from '../checkpoint.ts';
export * from '../safetensors.ts';
export * from '../trainer.ts';
export * from '../evaluate.ts';
export * from '../data/dataset.ts';
export * from '../data/cifar.ts';
export * from '../data/augment.ts';
export * from '../data/idx.ts';
export * from '../data/shuffle.ts';
export * from '../data/feed.ts';
export * from '../data/text.ts';
