import { describe, expect, it } from 'vitest';
import { F, Module, nn, type Tensor } from '../../src/frontend/api.ts';
import { callerLoc } from '../../src/frontend/source-loc.ts';
import { trace } from '../../src/frontend/trace.ts';
import { Tracer, withTracer } from '../../src/frontend/tracer.ts';
import type { Graph } from '../../src/ir/graph.ts';
import { thrown } from '../runtime/helpers.ts';

// The layers a GPT needs (nn.Embedding, nn.LayerNorm, nn.GELU, nn.Linear on any rank) and their
// F.* forms: PyTorch's signatures, the shapes they make, the ops they record, and errors that
// name the model line.

const traced = (m: Module, input: number[], batchSize = 2): Graph => trace(m, { input, batchSize, mode: 'train' });
const outShape = (g: Graph) => g.nodes[g.outputs.logits!]!.shape;
const ops = (g: Graph) => g.nodes.filter((n) => !['input', 'param', 'const'].includes(n.op)).map((n) => n.op);

/** Runs fn on fresh inputs of these shapes in a trace. */
function onInputs(shapes: number[][], fn: (...xs: Tensor[]) => Tensor): Tensor {
  const t = new Tracer('eval');
  const xs = shapes.map((shape, i) => t.wrap(t.b.op('input', [], { name: `x${i}`, shape })));
  return withTracer(t, () => fn(...xs));
}

describe('nn.Linear and F.linear apply to the last dimension of any rank', () => {
  it('a 2-d input records the one linear op it always did', () => {
    expect(ops(traced(new nn.Linear(4, 3), [4]))).toEqual(['linear']);
  });

  it('[B, T, in] -> [B, T, out] through views around the linear op; 1-d -> 1-d', () => {
    const g = traced(new nn.Linear(4, 3), [5, 4]);
    expect(outShape(g)).toEqual([2, 5, 3]);
    expect(ops(g)).toEqual(['reshape', 'linear', 'reshape']);
    expect(g.nodes.find((n) => n.op === 'linear')!.shape).toEqual([10, 3]);
    expect(onInputs([[4], [3, 4]], (x, w) => F.linear(x!, w!)).shape).toEqual([3]);
    expect(onInputs([[2, 2, 2, 4], [3, 4], [3]], (x, w, b) => F.linear(x!, w!, b)).shape).toEqual([2, 2, 2, 3]);
  });

  it('a wrong feature count is an error at the model line', () => {
    const [e, at] = [thrown(() => onInputs([[2, 7, 5], [3, 4]], (x, w) => F.linear(x!, w!))), callerLoc()];
    expect(e.message).toBe('F.linear expects 4 input features, got 5 (input shape [2, 7, 5])');
    expect([e.loc?.file, e.loc?.line]).toEqual([at?.file, at?.line]);
    expect(thrown(() => traced(new nn.Linear(4, 3), [6, 5])).message).toBe("Linear '(model)' expects 4 input features, got 5 (input shape [2, 6, 5])");
  });
});

describe('nn.Embedding and F.embedding', () => {
  it('ids [...] -> [..., dim], a weight [num, dim] initialised N(0, 1)', () => {
    const emb = new nn.Embedding(10, 6);
    expect([emb.numEmbeddings, emb.embeddingDim]).toEqual([10, 6]);
    expect([...emb.declaredState]).toEqual([['weight', { shape: [10, 6], init: { kind: 'normal', mean: 0, std: 1 }, kind: 'param' }]]);
    const g = traced(emb, [7]);
    expect(outShape(g)).toEqual([2, 7, 6]);
    expect(ops(g)).toEqual(['embedding']);
    expect(onInputs([[3], [10, 4]], (ids, w) => F.embedding(ids!, w!)).shape).toEqual([3, 4]);
    expect(onInputs([[], [10, 4]], (ids, w) => F.embedding(ids!, w!)).shape).toEqual([4]);
  });

  it('its gradient reaches the weight, not the ids', () => {
    const g = trace(new nn.Embedding(10, 6), { input: [7], batchSize: 2, mode: 'train' });
    const ids = g.inputs.x!;
    expect(g.nodes.find((n) => n.op === 'embedding')!.inputs[0]).toBe(ids);
  });

  it.each([
    ['a fractional size', () => new nn.Embedding(10.5, 4), 'Embedding: num_embeddings must be a positive integer, got 10.5'],
    ['a zero dim', () => new nn.Embedding(10, 0), 'Embedding: embedding_dim must be a positive integer, got 0'],
    ['padding_idx', () => new nn.Embedding(10, 4, { padding_idx: 0 } as never), 'Embedding: padding_idx=0 is not supported by kiln (only null'],
    ['max_norm, positional', () => new nn.Embedding(10, 4, null, 1 as never), 'Embedding: maxNorm=1 is not supported by kiln (only null'],
    ['F.embedding sparse', () => F.embedding({} as never, {} as never, null, null, 2, false, true as never), 'F.embedding: sparse=true is not supported by kiln (only false'],
  ])('%s is an error at the new, on its line', (_, make, message) => {
    const [e, at] = [thrown(make), callerLoc()];
    expect(e.message).toContain(message);
    expect(e.hint).toBeTruthy();
    expect(e.loc?.file).toBe(at?.file);
  });

  it('F.embedding with a weight that is not 2-d', () => {
    const e = thrown(() => onInputs([[3], [10]], (ids, w) => F.embedding(ids!, w!)));
    expect(e.message).toBe('F.embedding expects a 2-d weight [num_embeddings, embedding_dim], got one of shape [10] (input shape [3])');
  });
});

describe('nn.LayerNorm and F.layerNorm', () => {
  it('normalised_shape an int or a list; weight ones, bias zeros; eps and elementwise_affine positional or named', () => {
    const ln = new nn.LayerNorm(8);
    expect([ln.normalizedShape, ln.eps, ln.elementwiseAffine]).toEqual([[8], 1e-5, true]);
    expect([...ln.declaredState].map(([n, d]) => [n, d.shape, d.init])).toEqual([
      ['weight', [8], { kind: 'constant', value: 1 }],
      ['bias', [8], { kind: 'constant', value: 0 }],
    ]);
    const a = new nn.LayerNorm([3, 8], 1e-6, false);
    const b = new nn.LayerNorm([3, 8], { eps: 1e-6, elementwise_affine: false } as never);
    for (const l of [a, b]) expect([l.normalizedShape, l.eps, l.elementwiseAffine, l.declaredState.size]).toEqual([[3, 8], 1e-6, false, 0]);
  });

  it('keeps the shape; normalises over the trailing dims with one layer_norm op, then the affine weight and bias', () => {
    const g = traced(new nn.LayerNorm([3, 8]), [5, 3, 8]);
    expect(outShape(g)).toEqual([2, 5, 3, 8]);
    const ops = g.nodes.filter((n) => !['input', 'param', 'const'].includes(n.op));
    expect(ops.map((n) => [n.op, n.attrs])).toEqual([
      ['layer_norm', { eps: 1e-5, dims: 2 }],
      ['mul', {}],
      ['add', {}],
    ]);
    const plain = traced(new nn.LayerNorm(8, { elementwiseAffine: false }), [5, 8]);
    expect(plain.nodes.filter((n) => n.op !== 'input').map((n) => n.op)).toEqual(['layer_norm']);
    expect(onInputs([[4, 6]], (x) => F.layerNorm(x!, 6)).shape).toEqual([4, 6]);
  });

  it.each([
    ['a zero size', () => new nn.LayerNorm(0), 'LayerNorm: normalized_shape must be a positive integer, got 0'],
    ['an empty shape', () => new nn.LayerNorm([]), 'LayerNorm: normalized_shape must name at least one dimension'],
    ['a negative eps', () => new nn.LayerNorm(4, -1), 'LayerNorm: eps must be a non-negative number, got -1'],
    ['a misspelt option', () => new nn.LayerNorm(4, { elementwise_afine: false } as never), "LayerNorm: unknown option 'elementwise_afine'; did you mean 'elementwiseAffine'?"],
  ])('%s is an error at the new', (_, make, message) => {
    const [e, at] = [thrown(make), callerLoc()];
    expect(e.message).toContain(message);
    expect(e.loc?.file).toBe(at?.file);
  });

  it('an input that does not end in normalized_shape is an error naming the layer', () => {
    expect(thrown(() => traced(new nn.LayerNorm(8), [7])).message).toBe("LayerNorm '(model)' expects an input ending in [8], got [7] (input shape [2, 7])");
    expect(thrown(() => onInputs([[4, 6], [5]], (x, w) => F.layerNorm(x!, 6, w))).message).toBe('F.layerNorm expects a weight of shape [6], got [5] (input shape [4, 6])');
  });
});

describe("nn.GELU takes PyTorch's approximate, positional or named", () => {
  it.each([[[]], [['none']], [[{ approximate: 'none' }]]])('%j is exact', (args) => {
    expect(new (nn.GELU as unknown as new (...a: unknown[]) => nn.OpLayer)(...args).attrs).toEqual({ approximate: 'none' });
  });
  it.each([[['tanh']], [[{ approximate: 'tanh' }]]])('%j is the tanh form', (args) => {
    expect(new (nn.GELU as unknown as new (...a: unknown[]) => nn.OpLayer)(...args).attrs).toEqual({ approximate: 'tanh' });
  });
  it('anything else is an error', () => {
    expect(thrown(() => new nn.GELU({ approximate: 'fast' } as never)).message).toContain("GELU: approximate must be one of 'none', 'tanh'");
  });
});
