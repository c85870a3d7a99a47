import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kiln, miniMnist } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-compile-'));
const data = miniMnist(join(dir, 'mini'), 96, 50);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kiln compile', () => {
  it('writes a bundle that trains exactly like the model file', () => {
    const bundle = join(dir, 'cnn.kiln');
    const c = kiln(['compile', 'samples/simple-cnn.ts', '--batch-size', '32', '-o', bundle]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/train batch +32: +6 kernels/);
    expect(c.stderr).toMatch(/eval +batch 1000: +2 kernels/);
    const b = JSON.parse(readFileSync(bundle, 'utf8'));
    expect(Object.keys(b.programs)).toEqual(['train/32', 'eval/1000']);

    const run = (model: string, log: string) => {
      const r = kiln(['train', model, '--data', data, '--backend', 'reference', '--log', log]);
      expect(r.code, r.stderr).toBe(0);
      return readFileSync(log, 'utf8');
    };
    // 96 images at batch 32 from the bundle; the .ts at the same batch size for comparison.
    const fromBundle = run(bundle, join(dir, 'bundle.jsonl'));
    const r = kiln(['train', 'samples/simple-cnn.ts', '--batch-size', '32', '--data', data, '--backend', 'reference', '--log', join(dir, 'ts.jsonl')]);
    expect(r.code, r.stderr).toBe(0);
    expect(fromBundle).toBe(readFileSync(join(dir, 'ts.jsonl'), 'utf8'));
    expect(fromBundle.trim().split('\n')).toHaveLength(3);
  });

  it('a damaged bundle is named with what is wrong', () => {
    const bad = join(dir, 'bad.kiln');
    writeFileSync(bad, '{"format": "something-else"}');
    const r = kiln(['train', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.kiln is not a kiln bundle: no "format": "kiln-bundle" field/);
    expect(r.stderr).toMatch(/hint: rebuild it with `kiln compile/);
  });
});
