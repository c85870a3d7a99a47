export * from './errors.ts';
export * from './shape.ts';
export * from './graph.ts';
export * from './op.ts';
export * from './builder.ts';
