// What `import ... from 'kiln'` gives a model file.
import * as layers from './nn/index.ts';
import { tableLayers, type OpLayer as TableLayer, type TableLayers } from './nn/table-layers.ts';

export { Module } from './module.ts';
export { Tensor } from './tensor.ts';
export { F } from './functional.ts';
/** Tensors made inside forward from their shape (torch.arange, ones, zeros, tril, triu). */
export { arange, ones, tril, triu, zeros } from './constants.ts';
/** torch.nn's layers: the ones with parameters or shape logic, and those of the op table (ReLU, GELU, ...). */
export const nn: typeof layers & TableLayers = { ...layers, ...tableLayers() };
// The layer types, for fields annotated as PyTorch code annotates them (`conv: nn.Conv2d`); every
// layer of the op table is an OpLayer.
export declare namespace nn {
  export type Conv2d = layers.Conv2d;
  export type Linear = layers.Linear;
  export type MaxPool2d = layers.MaxPool2d;
  export type AvgPool2d = layers.AvgPool2d;
  export type AdaptiveAvgPool2d = layers.AdaptiveAvgPool2d;
  export type Dropout = layers.Dropout;
  export type BatchNorm1d = layers.BatchNorm1d;
  export type BatchNorm2d = layers.BatchNorm2d;
  export type Embedding = layers.Embedding;
  export type LayerNorm = layers.LayerNorm;
  export type Flatten = layers.Flatten;
  export type Sequential = layers.Sequential;
  export type OpLayer = TableLayer;
  export type Conv2dOptions = layers.Conv2dOptions;
  export type BatchNormOptions = layers.BatchNormOptions;
  export type LayerNormOptions = layers.LayerNormOptions;
}

/** The `training` export of a model file: defaults that command-line flags override. */
export type { TrainingOptions } from './training-options.ts';
