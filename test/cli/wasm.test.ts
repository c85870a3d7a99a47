import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kiln } from './helpers.ts';

// The wasm backend through the CLI: the module dump, and a few training steps (the default
// backend) with --threads.

describe('kiln with the wasm backend', () => {
  it('ir --stage wasm prints the module of a step kernel by kernel', () => {
    for (const step of ['train', 'eval']) {
      const r = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'wasm', '--step', step, '--batch-size', '8']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^;; \\d+ threads?, .*\\n;; kiln wasm module: ${step} step, batch 8`));
      expect(r.stdout).toContain(';; ---- kernel k0_conv_block: conv_block');
      expect(r.stdout).toContain('(export "step" (func $step))');
    }
    const bad = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'wasm', '--format', 'json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--format json does not apply to --stage wasm/);
  });

  it('train runs on the wasm backend by default, on any number of threads', () => {
    for (const threads of ['1', '2']) {
      const r = kiln(['train', 'samples/simple-cnn.ts', '--max-steps', '3', '--threads', threads]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/backend wasm/);
      expect(r.stdout).toMatch(/3 steps in/);
    }
    const bad = kiln(['train', 'samples/simple-cnn.ts', '--max-steps', '1', '--threads', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--threads must be a positive integer/);
  });

  it('a step past WebAssembly\'s 4 GiB is the user\'s error, with a batch size that fits, before any step runs', () => {
    const save = join(tmpdir(), `kiln-never-${process.pid}.safetensors`);
    // A fixture rather than a sample: the samples' steps at batch 60,000 now plan under 4 GiB.
    const r = kiln(['train', 'test/fixtures/models/wide-conv.ts', '--batch-size', '60000', '--max-steps', '1', '--save', save]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: the train step at batch 60000 needs [\d.]+ GiB of wasm memory; WebAssembly memory is at most 4 GiB\n  hint: use --batch-size \d+ or less$/m);
    expect(r.stdout).not.toMatch(/Train Batch/);
    expect(existsSync(save)).toBe(false);
  });
});
