export { Conv2d, type Conv2dOptions } from './conv2d.ts';
export { Linear } from './linear.ts';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from './pool.ts';
export { Dropout } from './dropout.ts';
export { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from './batch-norm.ts';
export { Embedding } from './embedding.ts';
export { LayerNorm, type LayerNormOptions } from './layer-norm.ts';
export { Flatten } from './flatten.ts';
export { Sequential } from './sequential.ts';
