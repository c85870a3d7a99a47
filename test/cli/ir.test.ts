import { describe, expect, it } from 'vitest';
import { kiln } from './helpers.ts';

const samples = ['simple-cnn', 'lenet', 'mlp'];

describe('kiln ir', () => {
  it.each(samples)('%s: every stage in every format', (name) => {
    for (const stage of ['traced', 'train', 'eval']) {
      const text = kiln(['ir', `samples/${name}.ts`, '--stage', stage, '--batch-size', '8']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^# ${stage} graph, batch 8`));
      expect(text.stdout).toMatch(/FLOPs: +[\d.]+ \w* ?per step/);

      const json = JSON.parse(kiln(['ir', `samples/${name}.ts`, '--stage', stage, '--format', 'json']).stdout);
      expect(json.stage).toBe(stage);
      expect(Object.keys(json.nodes[0])).toEqual(expect.arrayContaining(['id', 'op', 'shape', 'inputs', 'attrs', 'loc']));
      expect(json.summary.paramCount).toBe(json.params.reduce((s: number, p: { shape: number[] }) => s + p.shape.reduce((a, b) => a * b, 1), 0));
      expect(json.summary.flopsPerStep).toBeGreaterThan(0);

      const dot = kiln(['ir', `samples/${name}.ts`, '--stage', stage, '--format', 'dot']).stdout;
      expect(dot).toMatch(/^digraph "\w+" \{/);
      if (stage === 'train') expect(dot).toContain('subgraph cluster_backward');
    }
  });

  it('SimpleCNN: snake_case ops with model lines; 54,410 parameters', () => {
    const out = kiln(['ir', 'samples/simple-cnn.ts']).stdout;
    for (const op of ['conv2d', 'relu', 'max_pool2d', 'reshape', 'linear']) expect(out).toContain(`= ${op}(`);
    expect(out).toContain('# samples/simple-cnn.ts:10:45 conv1');
    expect(out).toContain('params:  54,410 in 4 tensors');
  });
});

describe('errors: one clear message with file:line:col and a hint, no stack trace', () => {
  it.each([
    ['test/fixtures/models/linear-mismatch.ts', /^error: test\/fixtures\/models\/linear-mismatch.ts:12:21: Linear 'fc1' expects 2704 input features, got 5408/],
    ['test/fixtures/models/if-on-tensor.ts', /^error: test\/fixtures\/models\/if-on-tensor.ts:\d+:\d+: `if` condition depends on tensor values/],
    ['test/fixtures/models/unknown-layer.ts', /^error: test\/fixtures\/models\/unknown-layer.ts:4:\d+: .*Conv2D[\s\S]*hint: .*nn\.Conv2d/],
    ['test/fixtures/models/no-such-file.ts', /^error: model file not found: test\/fixtures\/models\/no-such-file.ts/],
  ])('%s', (file, message) => {
    const r = kiln(['ir', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('hint: ');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stdout).toBe('');
  });

  it('bad flags name the flag and what it accepts', () => {
    const r = kiln(['ir', 'samples/mlp.ts', '--stage', 'fused2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--stage must be one of traced, train, eval/);
  });

  it('--debug adds the stack', () => {
    const r = kiln(['ir', 'test/fixtures/models/linear-mismatch.ts', '--debug']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});
