import { describe, expect, it } from 'vitest';
import { kiln } from './helpers.ts';

describe('kiln ir: kernel stages', () => {
  it('--stage planned: one line per kernel with offsets and sizes, then the memory summary', () => {
    const r = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'planned']);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    // For the wasm backend, by default: it binds no buffers, so one launch updates every parameter
    // and one runs the last layer's forward, loss and backward.
    expect(lines[0]).toBe('# planned train step, batch 64: 4 kernels');
    expect(lines[1]).toMatch(/^k0_conv_block\s+conv_block\(conv2d relu max_pool2d\)\s+x\[64,1,28,28\]@\d+ 201 kB, .* -> %7\[64,32,13,13\]@\d+ 1\.38 MB, %7\.argmax\[64,32,13,13\]@\d+ 1\.38 MB$/);
    expect(r.stdout).toMatch(/^memory: {2}arena [\d.]+ MB \(\d+ bytes\); naive [\d.]+ MB: planning saves \d+%$/m);
    expect(r.stdout).toMatch(/lower bound [\d.]+ MB \(peak live bytes\): the arena is 1\.\d{3}x the bound/);
  });

  it("--backend webgpu: kernels within WebGPU's 8 storage buffers, so Adam updates two parameters a launch", () => {
    const r = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'fused', '--backend', 'webgpu']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('# fused train step, batch 64: 6 kernels');
    const clash = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'wasm', '--backend', 'webgpu']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toContain("--stage wasm is the wasm backend's code");
  });

  it('--stage fused --step eval --format json: kernels and memory', () => {
    const r = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'fused', '--step', 'eval', '--format', 'json', '--batch-size', '8']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernels.map((k: { kind: string }) => k.kind)).toEqual(['conv_block', 'linear_cross_entropy']);
    expect(j.kernels[0]).toMatchObject({ name: 'k0_conv_block', ops: ['conv2d', 'relu', 'max_pool2d'] });
    expect(j.kernels[0].inputs[0]).toEqual({ value: 'x', shape: [8, 1, 28, 28], bytes: 8 * 784 * 4 });
    expect(Object.keys(j.memory)).toEqual(['arenaBytes', 'naiveBytes', 'lowerBoundBytes']);
  });

  it('--stage planned --format json: slices with offsets; the arena saves over naive', () => {
    const j = JSON.parse(kiln(['ir', 'samples/lenet.ts', '--stage', 'planned', '--format', 'json']).stdout);
    const conv1 = j.kernels.find((k: { ops: string[] }) => k.ops.includes('conv2d'));
    expect(conv1.inputs[0]).toEqual({ value: 'x', shape: [64, 1, 28, 28], bytes: 200704, offset: expect.any(Number) });
    expect(j.memory.arenaBytes).toBeLessThan(j.memory.naiveBytes);
    expect(j.memory.arenaBytes).toBeLessThanOrEqual(1.1 * j.memory.lowerBoundBytes);
  });

  it('--format svg draws buffer lifetimes over the schedule', () => {
    const r = kiln(['ir', 'samples/mlp.ts', '--stage', 'planned', '--format', 'svg']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(r.stdout).toContain('<title>x: 200704 bytes at');
    expect(r.stdout.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('--stage simplified prints the cleaned graph; formats that do not apply name those that do', () => {
    expect(kiln(['ir', 'samples/lenet.ts', '--stage', 'simplified', '--batch-size', '4']).stdout).toMatch(/^# simplified train graph, batch 4/);
    const r = kiln(['ir', 'samples/mlp.ts', '--stage', 'fused', '--format', 'svg']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--format svg does not apply to --stage fused\n {2}hint: use one of text, json/);
  });
});
