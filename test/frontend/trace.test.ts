import { describe, expect, it } from 'vitest';
import { graphFor } from '../../src/cli/graphs.ts';
import { loadModelFile } from '../../src/frontend/loader.ts';
import { KilnError } from '../../src/ir/errors.ts';

const fixture = (name: string) => `test/fixtures/models/${name}.ts`;

async function traceError(file: string): Promise<KilnError> {
  try {
    const m = await loadModelFile(file);
    graphFor(m, 'train', { batchSize: 64, optimizer: m.training.optimizer });
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error(`${file} traced without error`);
}

describe('tracing the samples', () => {
  it('SimpleCNN: PyTorch names, shapes and the model lines of each op', async () => {
    const m = await loadModelFile('samples/simple-cnn.ts');
    const g = graphFor(m, 'traced', { batchSize: 64, optimizer: m.training.optimizer });
    expect(g.state.map((s) => [s.name, s.shape])).toEqual([
      ['conv1.weight', [32, 1, 3, 3]],
      ['conv1.bias', [32]],
      ['fc1.weight', [10, 5408]],
      ['fc1.bias', [10]],
    ]);
    const ops = g.nodes.filter((n) => n.loc).map((n) => `${n.op}@${n.loc!.line}:${n.loc!.col}`);
    expect(ops).toEqual(['conv2d@10:45', 'relu@10:29', 'max_pool2d@10:19', 'reshape@11:11', 'linear@12:21']);
    expect(g.nodes.every((n) => !n.loc || n.loc.file === 'samples/simple-cnn.ts')).toBe(true);
    expect(g.nodes[g.outputs.logits!]!.shape).toEqual([64, 10]);
  });

  it('Sequential children are named by index, as in PyTorch', async () => {
    const m = await loadModelFile('samples/mlp.ts');
    const g = graphFor(m, 'train', { batchSize: 8, optimizer: m.training.optimizer });
    expect(g.state.filter((s) => s.kind === 'param').map((s) => s.name)).toEqual(['layers.1.weight', 'layers.1.bias', 'layers.4.weight', 'layers.4.bias', 'layers.6.weight', 'layers.6.bias']);
    expect(Object.keys(g.updates)).toContain('layers.1.weight.momentum_buffer');
  });

  it('LeNet: batch-norm buffers in state_dict order; eval has no dropout and no batch statistics', async () => {
    const m = await loadModelFile('samples/lenet.ts');
    const train = graphFor(m, 'train', { batchSize: 4, optimizer: m.training.optimizer });
    expect(train.state.slice(2, 7).map((s) => s.name)).toEqual(['bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']);
    expect(Object.keys(train.updates)).toEqual(expect.arrayContaining(['bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']));
    expect(train.nodes.some((n) => n.op === 'dropout')).toBe(true);
    const ev = graphFor(m, 'eval', { batchSize: 4, optimizer: m.training.optimizer });
    expect(ev.nodes.some((n) => n.op === 'dropout' || n.op === 'batch_mean')).toBe(false);
    expect(ev.updates).toEqual({});
  });
});

describe('trace-time errors name the model line and the cause', () => {
  it.each([
    ['linear-mismatch', 'shape', '12:21', "Linear 'fc1' expects 2704 input features, got 5408 (input shape [64, 5408])"],
    ['bad-view', 'shape', '7:30', 'cannot view [64, 1, 28, 28] (50176 elements) as [-1, 100]: 50176 is not divisible by 100'],
    ['conv-channels', 'shape', '7:22', "Conv2d 'conv' expects 3 input channels, got 1 (input shape [64, 1, 28, 28])"],
    ['bad-layer-arg', 'layer-args', '4:8', 'Linear: out_features must be a positive integer, got 0'],
    ['returns-nothing', 'model-error', '', 'forward must return the output Tensor, got undefined'],
    ['throws-in-forward', 'model-error', '8:23', 'forward failed: Cannot read properties of undefined'],
    ['endless-loop', 'trace', '8:40', 'forward recorded 20,000 ops without returning; does a loop in it never end?'],
    ['bad-training', 'training-options', '11:1', 'training: batchSize must be a positive integer, got 0'],
    // Loops that make no tensors end at the model-code time limit (1 s here: KILN_MODEL_TIME_LIMIT_MS).
    ['endless-js-loop', 'timeout', '', 'Net.forward() ran for more than 1 s; does a loop in it never end?'],
    ['endless-constructor', 'timeout', '', 'constructing Net ran for more than 1 s; does a loop in it never end?'],
    ['endless-top-level', 'timeout', '', 'endless-top-level.ts ran for more than 1 s; does a loop in it never end?'],
    // A tensor turned into a number or string behind an `any`, where the linter cannot see it.
    ['number-of-tensor', 'tensor-value', '8:9', "converting it to a number (Number(x), +x, or a comparison such as x > 0) reads a tensor's value"],
    ['string-of-tensor', 'tensor-value', '8:17', "converting it to a string (a template string or String(x)) reads a tensor's value"],
  ])('%s', async (name, code, at, message) => {
    if (code === 'timeout') process.env.KILN_MODEL_TIME_LIMIT_MS = '1000';
    const e = await traceError(fixture(name)).finally(() => delete process.env.KILN_MODEL_TIME_LIMIT_MS);
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
    if (at) expect(`${e.loc?.line}:${e.loc?.col}`).toBe(at);
    expect(e.loc?.file).toBe(fixture(name));
    expect(e.hint).toBeTruthy();
  });
});
