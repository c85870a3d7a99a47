import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain JavaScript launcher code without declarations
import { dawnFilter, opensDawn } from '../../bin/quiet-dawn.js';

const WARN = (kind: string) => `Warning: max${kind}BuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.`;

describe("bin/quiet-dawn.js: Dawn's clamp warnings kept off the terminal", () => {
  it('knows which command lines open a WebGPU device', () => {
    expect(opensDawn(['train', 'm.ts', '--backend', 'webgpu'])).toBe(true);
    expect(opensDawn(['eval', 'm.ts', '--backend=webgpu', '--weights', 'w'])).toBe(true);
    expect(opensDawn(['train', 'm.ts'])).toBe(false);
    expect(opensDawn(['train', 'm.ts', '--backend', 'wasm'])).toBe(false);
    expect(opensDawn(['bench'])).toBe(true);
    expect(opensDawn(['bench', '--backends', 'wasm,reference'])).toBe(false);
    expect(opensDawn(['bench', '--backends', 'wasm,webgpu'])).toBe(true);
    expect(opensDawn(['ir', 'm.ts', '--backend', 'webgpu'])).toBe(false);
    expect(opensDawn(['--help'])).toBe(false);
  });

  it('drops exactly the two warnings, split across chunks anywhere, and passes the rest through at once', () => {
    let out = '';
    const f = dawnFilter((s: string) => (out += s));
    const text = `${WARN('DynamicUniform')}\n${WARN('DynamicStorage')}\nkiln: webgpu adapter: x\nWarning: something else\n`;
    for (let i = 0; i < text.length; i += 7) f.push(text.slice(i, i + 7));
    expect(out).toBe('kiln: webgpu adapter: x\nWarning: something else\n');
    // A progress bar redrawn with \r and no newline is not held back.
    out = '';
    f.push('\repoch 1/1 ███░░ 3/5');
    expect(out).toBe('\repoch 1/1 ███░░ 3/5');
    // A partial line that could still be the warning waits; at the end it is written as it is.
    out = '';
    f.push('Warning: maxDyn');
    expect(out).toBe('');
    f.flush();
    expect(out).toBe('Warning: maxDyn');
  });
});
