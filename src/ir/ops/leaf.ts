import { defineOp, ints, num } from '../op.ts';

// Leaves carry their shape as an attribute: they have no inputs to derive it from.

/** A per-step input: the image batch (`x`), class labels (`labels`) or the step counter (`step`). */
export const input = defineOp({
  name: 'input',
  doc: 'per-step input slot written by the runtime',
  arity: 0,
  shape: (_, a) => ints(a, 'shape'),
  flops: () => 0,
});

/** A persistent tensor: a parameter, a buffer or optimizer state, named as in a state_dict. */
export const param = defineOp({
  name: 'param',
  doc: 'persistent tensor read at the start of the step',
  arity: 0,
  shape: (_, a) => ints(a, 'shape'),
  flops: () => 0,
});

/** A scalar constant; broadcasting gives it any shape. */
export const constant = defineOp({
  name: 'const',
  doc: 'scalar constant',
  arity: 0,
  shape: (_, a) => {
    num(a, 'value');
    return [];
  },
  flops: () => 0,
});
