// What `import ... from 'kiln'` gives a model file.
import * as layers from './nn/index.ts';
import { tableLayers, type TableLayers } from './nn/table-layers.ts';

export { Module } from './module.ts';
export { Tensor } from './tensor.ts';
export { F } from './functional.ts';
/** torch.nn's layers: the ones with parameters or shape logic, and those of the op table (ReLU, GELU, ...). */
export const nn: typeof layers & TableLayers = { ...layers, ...tableLayers() };

/** The `training` export of a model file: defaults that command-line flags override. */
export type { TrainingOptions } from './training-options.ts';
