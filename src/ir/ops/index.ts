// Importing this module registers every op in the table.
export * from './leaf.ts';
export * from './reshape.ts';
export * from './permute.ts';
export * from './slice.ts';
export * from './elementwise.ts';
export * from './iota.ts';
export * from './activation.ts';
export * from './reduce.ts';
export * from './conv2d.ts';
export * from './pool.ts';
export * from './linear.ts';
export * from './dropout.ts';
export * from './batch-norm.ts';
export * from './layer-norm.ts';
export * from './embedding.ts';
export * from './softmax.ts';
export * from './optimizer.ts';
