// What `import ... from 'kiln'` gives a model file.
import * as nn from './nn/index.ts';

export { Module } from './module.ts';
export { Tensor } from './tensor.ts';
export { F } from './functional.ts';
export { nn };

/** The `training` export of a model file: defaults that command-line flags override. */
export type { TrainingOptions } from './training-options.ts';
