import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kiln } from './helpers.ts';

// kiln generate on small byte-level models trained here for a few steps: the prompt comes back
// first, then exactly --tokens bytes, the same for the same seed on every backend; models that
// are not causal language models over bytes are refused with the reason.
const dir = mkdtempSync(join(tmpdir(), 'kiln-generate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const out = (name: string) => join(dir, name);

const text = out('words.txt');
const bigram = 'test/fixtures/models/byte-bigram.ts';
const mixer = 'test/fixtures/models/byte-mixer.ts';

beforeAll(() => {
  writeFileSync(text, 'the cat sat on the mat and the dog ran far. '.repeat(40));
  for (const [model, weights] of [[bigram, 'bigram.safetensors'], [mixer, 'mixer.safetensors']] as const) {
    const r = kiln(['train', model, '--data', text, '--max-steps', '30', '--threads', '1', '--save', out(weights)]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 120_000);

const generate = (args: string[]) => kiln(['generate', bigram, '--weights', out('bigram.safetensors'), '--threads', '1', ...args]);

describe('kiln generate', () => {
  it('writes the prompt, then --tokens bytes; the same seed gives the same text, another seed other text', () => {
    const a = generate(['--prompt', 'the ', '--tokens', '60', '--seed', '3']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout.startsWith('the ')).toBe(true);
    expect(Buffer.byteLength(a.stdout)).toBeGreaterThanOrEqual(4 + 60 + 1);
    expect(a.stderr).toMatch(/^kiln: 60 bytes in [\d.]+ s \([\d.]+ bytes\/s, wasm\)$/m);
    expect(generate(['--prompt', 'the ', '--tokens', '60', '--seed', '3']).stdout).toBe(a.stdout);
    expect(generate(['--prompt', 'the ', '--tokens', '60', '--seed', '4']).stdout).not.toBe(a.stdout);
  });

  it('at temperature 0 takes the most likely byte: the same text on the reference backend', () => {
    const wasm = generate(['--prompt', 'th', '--tokens', '30', '--temperature', '0']);
    const reference = kiln(['generate', bigram, '--weights', out('bigram.safetensors'), '--prompt', 'th', '--tokens', '30', '--temperature', '0', '--backend', 'reference']);
    expect(wasm.code, wasm.stderr).toBe(0);
    expect(reference.stdout).toBe(wasm.stdout);
  });

  it('--top-k 1 is greedy whatever the temperature', () => {
    expect(generate(['--prompt', 'th', '--tokens', '30', '--top-k', '1', '--temperature', '5', '--seed', '9']).stdout).toBe(generate(['--prompt', 'th', '--tokens', '30', '--temperature', '0']).stdout);
  });

  it('refuses a model that sees later positions, an image model and bad flags, saying why', () => {
    const notCausal = kiln(['generate', mixer, '--weights', out('mixer.safetensors'), '--threads', '1']);
    expect(notCausal.code).toBe(1);
    expect(notCausal.stderr).toContain('error: test/fixtures/models/byte-mixer.ts: the model is not causal');
    const image = kiln(['generate', 'samples/mlp.ts', '--weights', out('bigram.safetensors')]);
    expect(image.code).toBe(1);
    expect(image.stderr).toContain("this model's input is [1, 28, 28], not a context [T]");
    expect(generate(['--top-k', '300']).stderr).toContain('--top-k 300 is more than the 256 bytes there are');
    expect(generate(['--temperature', '-1']).code).toBe(1);
    expect(generate(['--prompt', '']).stderr).toContain('--prompt is empty');
  });
});
