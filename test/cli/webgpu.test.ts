import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu } from '../../src/runtime/webgpu/device.ts';
import { kiln, kilnAsync, miniMnist } from './helpers.ts';

// The webgpu backend from the command line: the adapter named, training and evaluation on it
// agreeing with the reference backend, and the shaders printed by `kiln ir --stage wgsl`.

const dir = mkdtempSync(join(tmpdir(), 'kiln-cli-webgpu-'));
const data = miniMnist(join(dir, 'mini'), 96, 40);
const out = (name: string) => join(dir, name);
let why: string | undefined;
beforeAll(async () => {
  try {
    (await openGpu()).device.destroy();
  } catch (e) {
    // CI installs what Dawn needs (.ci/run): there, no adapter is a failure, not a skip.
    if (process.env.KILN_REQUIRE_WEBGPU) throw e;
    why = (e as Error).message;
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kiln --backend webgpu', () => {
  it('--check-numerics replays a queued backend\'s step: the same op and kernel as on wasm', () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const args = (backend: string) => ['train', 'samples/mlp.ts', '--data', data, '--optimizer', 'sgd', '--lr', '1e20', '--check-numerics', '--backend', backend];
    const found = (r: { stderr: string }) => /^error: (.*)$/m.exec(r.stderr)?.[1];
    const gpu = kiln(args('webgpu'));
    expect(gpu.code, gpu.stderr).toBe(1);
    expect(found(gpu)).toMatch(/^samples\/mlp\.ts:\d+:\d+: --check-numerics: step \d+ .* first appears in %\d+ = \w+/);
    expect(found(gpu)).toBe(found(kiln(args('wasm'))));
  });

  it('names the adapter, trains like the reference backend, and eval reads the weights back', () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const args = (backend: string) => ['train', 'samples/simple-cnn.ts', '--data', data, '--batch-size', '32', '--backend', backend, '--log', out(`${backend}.jsonl`), '--save', out(`${backend}.safetensors`)];
    const gpu = kiln(args('webgpu'));
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(gpu.stderr).toMatch(/^kiln: webgpu adapter: .+\(Dawn (Vulkan|OpenGL)/m);
    // Dawn's clamp warnings (written by its C++ to stderr) are filtered out (bin/quiet-dawn.js).
    expect(gpu.stderr).not.toContain('Warning: maxDynamic');
    const ref = kiln(args('reference'));
    expect(ref.code, ref.stderr).toBe(0);
    const losses = (b: string) => readFileSync(out(`${b}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
    const [g, r] = [losses('webgpu'), losses('reference')];
    expect(g).toHaveLength(3);
    // Three Adam steps from the same weights: the losses agree far inside 1e-4.
    g.forEach((l, i) => expect(Math.abs(l - r[i]!) / r[i]!).toBeLessThan(1e-4));

    const ev = kiln(['eval', 'samples/simple-cnn.ts', '--data', data, '--weights', out('webgpu.safetensors'), '--backend', 'webgpu']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/confusion matrix/);
  });

  it('Ctrl-C behind the stderr filter: the trainer finishes its step, checkpoints and exits 130', async () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const ckpt = out('int.safetensors');
    let sent = false;
    // Sent once the steps are compiled; batch 1 makes the epoch many groups of queued steps, so
    // the signal (handled between groups) lands well before its end.
    const r = await kilnAsync(['train', 'samples/mlp.ts', '--data', data, '--batch-size', '1', '--backend', 'webgpu', '--checkpoint', ckpt], (line, kill) => {
      if (!sent && line.startsWith('kiln: compiled the train step')) {
        sent = true;
        kill('SIGINT');
      }
    });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/stopped at step \d+; checkpoint written to/);
    expect(r.stderr).not.toContain('Warning: maxDynamic');
    expect(existsSync(ckpt)).toBe(true);
  });

  it('kiln ir --stage wgsl prints every dispatch of the step with its bindings', () => {
    const r = kiln(['ir', 'samples/simple-cnn.ts', '--stage', 'wgsl']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\/\/ train step, batch 64: 6 kernels, 7 dispatches/);
    expect(r.stdout.match(/@compute @workgroup_size\(256\)/g)).toHaveLength(7);
    expect(r.stdout).toContain('// ---- k0_conv_block: workgroups');
    const ev = kiln(['ir', 'samples/lenet.ts', '--stage', 'wgsl', '--step', 'eval', '--batch-size', '8']);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/^\/\/ eval step, batch 8/);
  });
});
