import { describe, expect, it } from 'vitest';
import { foreachGroups, KERNEL_KINDS } from '../../src/ir/kernels.ts';
import type { Expr } from '../../src/ir/program.ts';

const conv = { stride: [1, 1], padding: [0, 0], bias: true, act: 'relu', pool: 'max', poolKernel: [2, 2], poolStride: [2, 2], poolPadding: [0, 0] } as const;
const grad = KERNEL_KINDS.conv_block_grad;
/** An epilogue that writes acc and one step. */
const expr: Expr = { steps: [{ prim: 'acc' }, { prim: 'neg', args: [0] }], outputs: [0, 1] };

describe('fused kernel kinds', () => {
  it('build lists the parts in role order, leaving out the optional ones whose condition fails, and read names them again', () => {
    const cases = [
      { attrs: { ...conv, saved: 'argmax', fold: false, dx: true }, inputs: { gy: 'gy', y: 'y', argmax: 'idx', x: 'x', w: 'w' }, order: ['gy', 'y', 'idx', 'x', 'w'] },
      { attrs: { ...conv, saved: 'recompute', fold: true, dx: false }, inputs: { g2: 'g2', w2: 'w2', x: 'x', w: 'w', b: 'b' }, order: ['g2', 'w2', 'x', 'w', 'b'] },
      { attrs: { ...conv, act: 'none', pool: 'avg', saved: 'none', fold: false, dx: false }, inputs: { gy: 'gy', x: 'x' }, order: ['gy', 'x'] },
    ] as const;
    for (const c of cases) {
      const k = grad.build(c.attrs, c.inputs, { dw: 'dw', db: 'db', dx: c.attrs.dx ? 'dx' : undefined });
      expect(k.inputs).toEqual(c.order);
      expect(k.outputs).toEqual(c.attrs.dx ? ['dw', 'db', 'dx'] : ['dw', 'db']);
      const v = grad.read(k);
      expect(Object.fromEntries(Object.entries(v.inputs).filter(([, s]) => s !== undefined))).toEqual(c.inputs);
      expect(v.attrs.saved).toBe(c.attrs.saved);
    }
  });

  it('build names the role that its condition on the attrs wants and the parts do not give, or the reverse', () => {
    const attrs = { ...conv, saved: 'argmax', fold: false, dx: false } as const;
    expect(() => grad.build(attrs, { gy: 1, y: 2, x: 3 }, { dw: 4, db: 5 })).toThrow('conv_block_grad: input argmax is missing, where it is present only when saved = argmax');
    expect(() => grad.build(attrs, { gy: 1, y: 2, argmax: 3, x: 4, w: 5 }, { dw: 6, db: 7 })).toThrow('conv_block_grad: input w is given, where it is present only when dx or saved = recompute');
    expect(() => grad.build(attrs, { gy: 1, y: 2, argmax: 3, x: 4 }, { dw: 6 })).toThrow('conv_block_grad: output db is missing, where it is present only when bias');
  });

  it('checks attrs against their types, and knows no others', () => {
    const ok = { bias: true, grad: false, gradScale: 1 };
    const ce = KERNEL_KINDS.linear_cross_entropy;
    expect(() => ce.read({ kind: 'linear_cross_entropy', attrs: { ...ok, grad: 'yes' }, inputs: [1, 2, 3, 4], outputs: [5, 6] })).toThrow('linear_cross_entropy: attr grad is "yes"');
    expect(() => ce.read({ kind: 'linear_cross_entropy', attrs: { ...ok, argmax: true }, inputs: [1, 2, 3, 4], outputs: [5, 6] })).toThrow('linear_cross_entropy: no attr argmax');
    expect(() => ce.read({ kind: 'softmax_cross_entropy', attrs: ok, inputs: [], outputs: [] })).toThrow('linear_cross_entropy: read a softmax_cross_entropy kernel');
  });

  it('read counts the lists: one result per expression output, and nothing left over', () => {
    const lin = KERNEL_KINDS.linear_ew;
    const v = lin.read({ kind: 'linear_ew', attrs: { bias: false }, inputs: ['x', 'w', 'mask'], outputs: ['acc', 'relu'], expr });
    expect(v.inputs).toEqual({ x: 'x', w: 'w', operands: ['mask'] });
    expect(v.outputs.results).toEqual(['acc', 'relu']);
    expect(() => lin.read({ kind: 'linear_ew', attrs: { bias: false }, inputs: ['x', 'w'], outputs: ['acc'], expr })).toThrow('linear_ew: output results: 2 expected, 1 left');
    expect(() => lin.read({ kind: 'linear_ew', attrs: { bias: false }, inputs: ['x', 'w'], outputs: ['acc', 'relu'] })).toThrow('linear_ew: needs an expression');
    expect(() => KERNEL_KINDS.softmax_cross_entropy.read({ kind: 'softmax_cross_entropy', attrs: { grad: false, gradScale: 1 }, inputs: [1, 2], outputs: [3, 4] })).toThrow('softmax_cross_entropy: 2 outputs, where the attrs make 1');
  });

  it('linear_grad writes dx itself without an epilogue, what the epilogue writes with one, and nothing without dx', () => {
    const lg = KERNEL_KINDS.linear_grad;
    expect(lg.build({ bias: true, dx: true }, { g: 'g', x: 'x', w: 'w', operands: [] }, { dw: 'dw', db: 'db', results: ['dx'] }).outputs).toEqual(['dw', 'db', 'dx']);
    expect(lg.build({ bias: false, dx: true }, { g: 'g', x: 'x', w: 'w', operands: ['m'] }, { dw: 'dw', results: ['dx', 'masked'] }, expr).inputs).toEqual(['g', 'x', 'w', 'm']);
    expect(() => lg.build({ bias: false, dx: false }, { g: 'g', x: 'x', operands: [] }, { dw: 'dw', results: ['dx'] })).toThrow('linear_grad: output results: 0 expected, 1 given');
  });

  it('foreachGroups gives each group its own inputs, then the shared ones', () => {
    const k = KERNEL_KINDS.foreach.build({ groups: 2, groupInputs: 2, groupOutputs: 1 }, { grouped: ['p0', 'g0', 'p1', 'g1'], shared: ['step'] }, { grouped: ['q0', 'q1'] }, expr);
    expect(foreachGroups(k).groups).toEqual([
      { inputs: ['p0', 'g0', 'step'], outputs: ['q0'] },
      { inputs: ['p1', 'g1', 'step'], outputs: ['q1'] },
    ]);
  });
});
