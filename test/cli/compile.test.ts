import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WASM_TARGET } from '../../src/codegen/wasm-simd/target.ts';
import { webgpuTarget } from '../../src/codegen/wgsl/target.ts';
import { precompiledFor, readBundle } from '../../src/frontend/bundle.ts';
import { REFERENCE_TARGET } from '../../src/runtime/reference/target.ts';
import { kiln, miniMnist, typeErrorModel } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-compile-'));
const data = miniMnist(join(dir, 'mini'), 96, 50);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kiln compile', () => {
  it('writes no bundle for a model its checks reject, though its steps were compiled beside them', () => {
    const { path: model, error } = typeErrorModel(join(dir, 'type-error.ts'));
    const bundle = join(dir, 'type-error.kiln');
    const c = kiln(['compile', model, '-o', bundle], process.cwd(), { KILN_CACHE_DIR: 'off' });
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(error);
    expect(existsSync(bundle)).toBe(false);
  });

  it('writes a bundle that trains exactly like the model file', () => {
    const bundle = join(dir, 'cnn.kiln');
    const c = kiln(['compile', 'samples/simple-cnn.ts', '--batch-size', '32', '-o', bundle]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/train batch +32: 4 wasm \/ 6 webgpu kernels/);
    expect(c.stderr).toMatch(/eval +batch 1000: 2 wasm \/ 2 webgpu kernels/);
    // The same arena figure, in the same unit, as `kiln ir` prints for the step.
    const arena = /train batch +32: .* arena ([\d.]+ [kMG]?B)/.exec(c.stderr)?.[1];
    expect(kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'planned', '--batch-size', '32']).stdout).toContain(`memory:  arena ${arena} (`);
    const b = readBundle(bundle, 'cnn.kiln');
    expect(b.compiled.map((c) => [c.target.name, c.target.maxStorageBuffers, Object.keys(c.programs)])).toEqual([
      ['wasm', Infinity, ['train/32', 'eval/1000']],
      ['webgpu (8 storage buffers)', 8, ['train/32', 'eval/1000']],
    ]);
    // Each backend gets the Program made within its limits: wasm's is not split for WebGPU.
    const [wasm, portable] = b.compiled.map((c) => c.programs['train/32']);
    expect(precompiledFor(b.compiled, WASM_TARGET, 'train', 32)).toBe(wasm);
    expect(precompiledFor(b.compiled, REFERENCE_TARGET, 'train', 32)).toBe(wasm);
    expect(precompiledFor(b.compiled, webgpuTarget(10), 'train', 32)).toBe(portable);
    expect(precompiledFor(b.compiled, webgpuTarget(4), 'train', 32)).toBeUndefined();
    expect(precompiledFor(b.compiled, WASM_TARGET, 'train', 64)).toBeUndefined();

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

  it('a bundle of a scheduled model (the resolved schedule rides with its optimizer) verifies and trains as the model file', () => {
    const bundle = join(dir, 'mlp-onecycle.kiln');
    const flags = ['--batch-size', '32', '--optimizer', 'sgd', '--lr', '0.1', '--schedule', 'onecycle'];
    expect(kiln(['compile', 'samples/mlp.ts', ...flags, '-o', bundle]).code).toBe(0);
    const run = (args: string[], log: string) => {
      const r = kiln(['train', ...args, '--data', data, '--backend', 'wasm', '--log', log]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('one-cycle schedule (max lr 0.1, cos, momentum 0.95–0.85)');
      return readFileSync(log, 'utf8');
    };
    expect(run([bundle], join(dir, 'sched-bundle.jsonl'))).toBe(run(['samples/mlp.ts', ...flags], join(dir, 'sched-ts.jsonl')));
  });

  it('an edited bundle is refused: by its checksum, and by the verifier when the checksum was redone', () => {
    const bundle = join(dir, 'cnn.kiln');
    const b = JSON.parse(readFileSync(bundle, 'utf8')) as Record<string, unknown> & { code: string; compiled: { programs: Record<string, { kernels: unknown[] }> }[] };
    const edited = join(dir, 'edited.kiln');
    writeFileSync(edited, JSON.stringify({ ...b, code: b.code.replace('nn.Linear(', 'nn.Linear( ') }));
    let r = kiln(['train', edited]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('edited.kiln is not a kiln bundle: it was changed after kiln compile wrote it (its SHA-256 does not match)');
    // No kernels at all "trained" at loss 0 before the verifier ran on load.
    b.compiled[0]!.programs['train/32']!.kernels = [];
    const { sha256: _, ...body } = b;
    writeFileSync(edited, JSON.stringify({ ...body, sha256: createHash('sha256').update(JSON.stringify(body)).digest('hex') }));
    r = kiln(['train', edited]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/edited\.kiln is not a kiln bundle: its train\/32 program for wasm does not verify: .* should end the step as/);
  });

  it('a bundle whose code was edited to loop at its top level (checksum redone) stops at the time limit instead of hanging', () => {
    const { sha256: _, ...b } = JSON.parse(readFileSync(join(dir, 'cnn.kiln'), 'utf8')) as Record<string, unknown> & { code: string };
    const head = b.code.indexOf('{') + 1;
    const body = { ...b, code: `${b.code.slice(0, head)}for (;;) {}${b.code.slice(head)}` };
    const looping = join(dir, 'looping.kiln');
    writeFileSync(looping, JSON.stringify({ ...body, sha256: createHash('sha256').update(JSON.stringify(body)).digest('hex') }));
    const r = kiln(['train', looping, '--log', join(dir, 'looping.jsonl')], undefined, { KILN_MODEL_TIME_LIMIT_MS: '1000' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*looping\.kiln:1:1: loading .*looping\.kiln ran for more than 1 s; does a loop in it never end\?$/m);
    expect(existsSync(join(dir, 'looping.jsonl'))).toBe(false);
    // Code that is not what kiln compile writes is refused before it runs.
    const foreign = { ...b, code: 'for (;;) {}' };
    writeFileSync(looping, JSON.stringify({ ...foreign, sha256: createHash('sha256').update(JSON.stringify(foreign)).digest('hex') }));
    expect(kiln(['train', looping]).stderr).toContain('looping.kiln: its code is not a model bundled by this kiln');
  });

  it('a step too large for WebAssembly memory is refused at compile time, with a batch size that fits', () => {
    const big = join(dir, 'big.kiln');
    const r = kiln(['compile', 'samples/simple-cnn.ts', '--batch-size', '100000', '-o', big]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: samples\/simple-cnn\.ts: the train step at batch 100000 needs [\d.]+ GiB \(arena [\d.]+ GB, weights and optimizer state [\d.]+ kB, and scratch\); WebAssembly memory is at most 4 GiB/);
    const fits = Number(/use --batch-size (\d+) or less/.exec(r.stderr)?.[1]);
    expect(fits).toBeGreaterThan(1000);
    expect(existsSync(big)).toBe(false);
    expect(kiln(['compile', 'samples/simple-cnn.ts', '--batch-size', String(fits), '-o', big]).code).toBe(0);
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
