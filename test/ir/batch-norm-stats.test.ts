import { describe, expect, it } from 'vitest';
import { ExprBuilder, pickOutputs } from '../../src/ir/expr.ts';
import { inPlaceAllowed, statsEpilogue } from '../../src/ir/kernels.ts';
import type { Kernel, Slice } from '../../src/ir/program.ts';

const sl = (shape: number[], value: string): Slice => ({ offset: 0, bytes: 4 * shape.reduce((a, b) => a * b, 1), shape, value });

/**
 * batch_norm_stats' epilogue as the fusion pass builds it for x [2, 3, 4, 4]: over [C] the running
 * mean's blend (operand 0, the kernel's input 1), over x's shape (x - mean)·gamma, x and gamma the
 * kernel's inputs 2 and 3 (expression inputs 3 and 4). `readRunning` makes the x part read the
 * running mean too.
 */
function stats(readRunning: boolean): Kernel {
  const b = new ExprBuilder();
  const running = b.bin('add', b.bin('mul', b.input(2), b.c(0.9)), b.bin('mul', b.input(0), b.c(0.1)));
  let norm = b.bin('mul', b.bin('sub', b.input(3), b.input(0, true)), b.input(4, true));
  if (readRunning) norm = b.bin('add', norm, b.input(2, true));
  const x = sl([2, 3, 4, 4], 'x');
  const c = (v: string) => sl([3], v);
  return {
    name: 'k0',
    kind: 'batch_norm_stats',
    ops: ['batch_mean', 'batch_var', 'axpby', 'batch_norm'],
    attrs: { xResults: 1 },
    inputs: [x, c('running_mean'), x, c('gamma')],
    outputs: [c('mean'), c('var'), c('running_mean.new'), sl([2, 3, 4, 4], 'y')],
    expr: { steps: b.steps, outputs: [running, norm] },
  };
}

describe("batch_norm_stats' two-domain epilogue", () => {
  it('splits into a [C] part and an x part, each with only the steps it needs', () => {
    const k = stats(false);
    const { channel, wide } = statsEpilogue(k.attrs, k.expr!);
    expect(channel.outputs).toHaveLength(1);
    expect(wide.outputs).toHaveLength(1);
    const inputs = (e: typeof channel) => e.steps.flatMap((s) => (s.prim === 'input' ? [s.input] : [])).sort();
    expect(inputs(channel)).toEqual([0, 2]);
    expect(inputs(wide)).toEqual([0, 3, 4]);
    // Renumbered: every argument is an earlier step of the part.
    for (const e of [channel, wide]) e.steps.forEach((s, i) => ('args' in s ? s.args : []).forEach((a) => expect(a).toBeLessThan(i)));
  });

  it('keeps the order of the outputs picked, and shares the steps they share', () => {
    const b = new ExprBuilder();
    const x = b.input(0);
    const twice = b.bin('add', x, x);
    const e = { steps: b.steps, outputs: [b.un('neg', twice), b.un('abs', x), b.bin('mul', twice, x)] };
    const picked = pickOutputs(e, [2, 0]);
    expect(picked.outputs.map((o) => picked.steps[o]!.prim)).toEqual(['mul', 'neg']);
    expect(picked.steps.filter((s) => s.prim === 'add')).toHaveLength(1);
    expect(picked.steps.some((s) => s.prim === 'abs')).toBe(false);
  });

  it('puts one-element outputs (step counters) in a part of their own, which may not overwrite what another part reads', () => {
    const b = new ExprBuilder();
    const counter = b.bin('add', b.input(2), b.c(1));
    // The [C] part reads the counter's old value too (a cumulative average: momentum None).
    const blend = b.bin('div', b.input(0), counter);
    const k: Kernel = {
      name: 'k0',
      kind: 'batch_norm_stats',
      ops: ['batch_mean', 'batch_var', 'add', 'div'],
      attrs: { scalarResults: 1 },
      inputs: [sl([2, 3], 'x'), sl([], 'num_batches_tracked')],
      outputs: [sl([3], 'mean'), sl([3], 'var'), sl([3], 'running_mean.new'), sl([], 'num_batches_tracked.new')],
      expr: { steps: b.steps, outputs: [blend, counter] },
    };
    const { channel, scalar, wide } = statsEpilogue(k.attrs, k.expr!);
    expect([channel.outputs.length, scalar.outputs.length, wide.outputs.length]).toEqual([1, 1, 0]);
    expect(scalar.steps.map((s) => s.prim)).toEqual(['input', 'const', 'add']);
    expect(inPlaceAllowed(k, 1, 3)).toBe(false);
    expect(inPlaceAllowed({ ...k, expr: { steps: b.steps, outputs: [b.bin('mul', b.input(0), b.c(2)), counter] } }, 1, 3)).toBe(true);
  });

  it('writes the running mean over its old value unless the x part, which runs after, still reads it', () => {
    // Output 2 (the running mean's new value) over input 1 (its old value).
    expect(inPlaceAllowed(stats(false), 1, 2)).toBe(true);
    expect(inPlaceAllowed(stats(true), 1, 2)).toBe(false);
    // y over x (read as an operand): each element read before it is written.
    expect(inPlaceAllowed(stats(false), 2, 3)).toBe(true);
    // Never over x the statistics read, nor the statistics themselves over anything.
    expect(inPlaceAllowed(stats(false), 0, 3)).toBe(false);
    expect(inPlaceAllowed(stats(false), 1, 0)).toBe(false);
  });
});
