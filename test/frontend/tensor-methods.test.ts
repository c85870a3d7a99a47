import { describe, expect, it } from 'vitest';
import { arange, F, ones, tril, triu, zeros, type Tensor } from '../../src/frontend/api.ts';
import { Tracer, withTracer } from '../../src/frontend/tracer.ts';
import { KilnError } from '../../src/ir/errors.ts';
import { executeGraph } from '../../src/runtime/reference/execute.ts';

// The tensor methods and constant tensors a GPT is written with: the shapes and ops they record
// (PyTorch's, negative dims included), the values of the constants, and errors for bad arguments
// that name the calling line.

/** Runs fn on inputs of the given shapes in an eval trace. */
function traced<T>(shapes: number[][], fn: (...xs: Tensor[]) => T): { t: Tracer; out: T } {
  const t = new Tracer('eval');
  const xs = shapes.map((shape, k) => t.wrap(t.b.op('input', [], { name: `x${k}`, shape })));
  return { t, out: withTracer(t, () => fn(...xs)) };
}

const shapeOf = (shapes: number[][], fn: (...xs: Tensor[]) => Tensor) => traced(shapes, fn).out.shape;

/** The values of a traced tensor that reads no input. */
function values(fn: () => Tensor): number[] {
  const { t, out } = traced([], fn);
  return [...executeGraph({ nodes: t.b.nodes }, {}, new Map(), { seed: 0 })[out.node]!];
}

function thrown(fn: (x: Tensor) => unknown): KilnError {
  try {
    traced([[2, 3, 4]], (x) => {
      fn(x);
      return x;
    });
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('shapes as PyTorch gives them', () => {
  it.each([
    ['unsqueeze(0)', (x: Tensor) => x.unsqueeze(0), [1, 2, 3, 4]],
    ['unsqueeze(-1)', (x: Tensor) => x.unsqueeze(-1), [2, 3, 4, 1]],
    ['unsqueeze(3)', (x: Tensor) => x.unsqueeze(3), [2, 3, 4, 1]],
    ['unsqueeze(-4)', (x: Tensor) => x.unsqueeze(-4), [1, 2, 3, 4]],
    ['squeeze() of unsqueezed', (x: Tensor) => x.unsqueeze(1).unsqueeze(-1).squeeze(), [2, 3, 4]],
    ['squeeze(dim) of a dim that is not 1 is a no-op', (x: Tensor) => x.squeeze(1), [2, 3, 4]],
    ['squeeze([0, -1]) of [1, 2, 3, 4, 1]', (x: Tensor) => x.unsqueeze(0).unsqueeze(-1).squeeze([0, -1]), [2, 3, 4]],
    ['contiguous', (x: Tensor) => x.contiguous(), [2, 3, 4]],
    ['permute(2, 0, 1)', (x: Tensor) => x.permute(2, 0, 1), [4, 2, 3]],
    ['permute([-1, 0, 1])', (x: Tensor) => x.permute([-1, 0, 1]), [4, 2, 3]],
    ['transpose(0, -1)', (x: Tensor) => x.transpose(0, -1), [4, 3, 2]],
    ['transpose(-2, -1)', (x: Tensor) => x.transpose(-2, -1), [2, 4, 3]],
    ['sum(-1, true)', (x: Tensor) => x.sum(-1, true), [2, 3, 1]],
    ['mean([0, -1])', (x: Tensor) => x.mean([0, -1]), [3]],
    ['softmax(-1)', (x: Tensor) => x.softmax(-1), [2, 3, 4]],
    ['F.softmax(x, -2)', (x: Tensor) => F.softmax(x, -2), [2, 3, 4]],
    ['matmul of batches', (x: Tensor) => x.matmul(x.transpose(-2, -1)), [2, 3, 3]],
    ['matmul by a matrix', (x: Tensor) => x.matmul(ones(4, 5)), [2, 3, 5]],
    ['matmul by a vector', (x: Tensor) => x.matmul(ones(4)), [2, 3]],
    ['a vector matmul a batch', (x: Tensor) => ones(3).matmul(x), [2, 4]],
    ['broadcast batch dims', (x: Tensor) => x.view(2, 1, 3, 4).matmul(ones(5, 4, 2)), [2, 5, 3, 2]],
    ['maskedFill with a broadcast mask', (x: Tensor) => x.maskedFill(tril(ones(3, 4)).eq(0), -Infinity), [2, 3, 4]],
    ['tril of a batch', (x: Tensor) => tril(x, -1), [2, 3, 4]],
  ] as const)('%s', (_, fn, shape) => {
    expect(shapeOf([[2, 3, 4]], fn)).toEqual(shape);
  });

  it('split and chunk give PyTorch pieces', () => {
    const pieces = (fn: (x: Tensor) => Tensor[]) => traced([[2, 7, 4]], fn).out.map((p) => p.shape);
    expect(pieces((x) => x.split(3, 1))).toEqual([[2, 3, 4], [2, 3, 4], [2, 1, 4]]);
    expect(pieces((x) => x.split([2, 5], -2))).toEqual([[2, 2, 4], [2, 5, 4]]);
    expect(pieces((x) => x.split(8, 1))).toEqual([[2, 7, 4]]);
    expect(pieces((x) => x.chunk(3, 1))).toEqual([[2, 3, 4], [2, 3, 4], [2, 1, 4]]);
    // torch.chunk(7 rows, 4) gives 4 pieces of 2, 2, 2, 1; chunk(6 rows, 4) only 3 pieces of 2.
    expect(pieces((x) => x.chunk(4, 1)).length).toBe(4);
    expect(pieces((x) => x.view(2, 4, 7).chunk(3, -1))).toEqual([[2, 4, 3], [2, 4, 3], [2, 4, 1]]);
    expect(traced([[6]], (x) => x.chunk(4)).out.map((p) => p.shape)).toEqual([[2], [2], [2]]);
    // A GPT's qkv split records slices of one tensor.
    const { t, out } = traced([[2, 5, 12]], (x) => x.split(4, 2));
    expect(out.map((p) => t.b.node(p.node).attrs)).toEqual([0, 4, 8].map((start) => ({ dim: 2, start, end: start + 4 })));
  });

  it('permute of the identity and transpose of a dim with itself record nothing', () => {
    const { t, out } = traced([[2, 3]], (x) => x.permute(0, 1).transpose(1, 1).contiguous());
    expect(t.b.node(out.node).op).toBe('input');
  });
});

describe('constant tensors', () => {
  it('arange, ones, zeros', () => {
    expect(values(() => arange(5))).toEqual([0, 1, 2, 3, 4]);
    expect(values(() => arange(2, 8, 2))).toEqual([2, 4, 6]);
    expect(values(() => arange(1, 2, 0.25))).toEqual([1, 1.25, 1.5, 1.75]);
    expect(values(() => arange(3, 0, -1))).toEqual([3, 2, 1]);
    expect(values(() => ones(2, 2))).toEqual([1, 1, 1, 1]);
    expect(values(() => zeros([3]))).toEqual([0, 0, 0]);
  });

  it('tril and triu with diagonals, as torch.tril(torch.ones(3, 4), d)', () => {
    expect(values(() => tril(ones(3, 4)))).toEqual([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0]);
    expect(values(() => tril(ones(3, 4), 1))).toEqual([1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]);
    expect(values(() => tril(ones(3, 4), -1))).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
    expect(values(() => triu(ones(3, 4)))).toEqual([1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1]);
    expect(values(() => triu(arange(6).view(2, 3), 1))).toEqual([0, 1, 2, 0, 0, 5]);
  });

  it('a causal mask fills above the diagonal', () => {
    const v = values(() => ones(3, 3).maskedFill(tril(ones(3, 3)).eq(0), -Infinity));
    expect(v).toEqual([1, -Infinity, -Infinity, 1, 1, -Infinity, 1, 1, 1]);
  });
});

describe('bad arguments name the calling line', () => {
  it.each([
    ['unsqueeze out of range', (x: Tensor) => x.unsqueeze(4), 'unsqueeze: dim 4 out of range for a tensor of shape [2, 3, 4] (expected one in [-4, 3])'],
    ['squeeze out of range', (x: Tensor) => x.squeeze(-4), 'squeeze: dim -4 out of range'],
    ['permute with too few dims', (x: Tensor) => x.permute(1, 0), 'permute: 2 dims given for a tensor of 3 dimensions'],
    ['permute repeating a dim', (x: Tensor) => x.permute(0, 2, -1), 'permute: dims [0, 2, -1] repeat a dimension'],
    ['transpose out of range', (x: Tensor) => x.transpose(0, 3), 'transpose: dim 3 out of range'],
    ['matmul of mismatched shapes', (x: Tensor) => x.matmul(x), 'matmul: shapes [2, 3, 4] and [2, 3, 4] cannot be multiplied (4 vs 3)'],
    ['matmul of batches that do not broadcast', (x: Tensor) => x.matmul(ones(3, 4, 2)), 'matmul batch dimensions [2] and [3] do not broadcast'],
    ['matmul by a number', (x: Tensor) => x.matmul(2 as never), 'matmul: the other operand must be a tensor'],
    ['split sizes that do not add up', (x: Tensor) => x.split([1, 1], 1), 'split: sizes [1, 1] add up to 2, but dim 1 of [2, 3, 4] has 3'],
    ['split by 0', (x: Tensor) => x.split(0), 'split: split_size must be a positive integer, got 0'],
    ['chunk into 0', (x: Tensor) => x.chunk(0), 'chunk: chunks must be a positive integer, got 0'],
    ['softmax without a dim', (x: Tensor) => x.softmax(undefined as never), 'softmax: dim undefined out of range'],
    ['a mask that does not broadcast', (x: Tensor) => x.maskedFill(ones(3, 3), 0), 'maskedFill: mask of shape [3, 3] does not broadcast to [2, 3, 4]'],
    ['maskedFill with a tensor value', (x: Tensor) => x.maskedFill(ones(4), x as never), 'maskedFill: value must be a number'],
    ['tril of a vector', () => tril(ones(3)), 'tril: expects a tensor of at least 2 dimensions, got shape [3]'],
    ['triu with a fractional diagonal', (x: Tensor) => triu(x, 0.5), 'triu: diagonal must be an integer, got 0.5'],
    ['ones of size 0', () => ones(2, 0), 'ones: sizes must be positive integers, got [2,0]'],
    ['an empty arange', () => arange(0), 'arange: the range from 0 to 0 by 1 is empty'],
  ] as const)('%s', (_, fn, message) => {
    const e = thrown(fn as (x: Tensor) => unknown);
    expect(e.message).toContain(message);
    expect(e.loc?.file).toMatch(/tensor-methods\.test\.ts$/);
    expect(e.hint).toBeTruthy();
  });

  it('arange outside forward says so', () => {
    expect(() => arange(3)).toThrow(/arange was called outside of tracing/);
  });
});
