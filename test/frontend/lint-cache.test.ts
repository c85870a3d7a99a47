import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lintCache } from '../../src/frontend/lint-cache.ts';

const root = mkdtempSync(join(tmpdir(), 'kiln-lint-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('lint verdict cache', () => {
  const dir = join(root, 'cache');
  const model = join(root, 'model.ts');
  const helper = join(root, 'helper.ts');
  writeFileSync(model, 'model v1');
  writeFileSync(helper, 'helper v1');

  it('is off when run from the sources (no CLI bundle to key it by)', () => {
    // Under vitest this module is a .ts file: each lint then runs in full.
    expect(lintCache(model, 'model v1', { dir })).toBeUndefined();
  });

  it('remembers a pass for the same kiln, model text and imported files', () => {
    const c = lintCache(model, 'model v1', { kiln: 'kiln A', dir })!;
    expect(c.passed()).toBe(false);
    c.remember([model, helper]);
    expect(lintCache(model, 'model v1', { kiln: 'kiln A', dir })!.passed()).toBe(true);
  });

  it('forgets it when the model text, the kiln or an imported file changes', () => {
    expect(lintCache(model, 'model v2', { kiln: 'kiln A', dir })!.passed()).toBe(false);
    expect(lintCache(model, 'model v1', { kiln: 'kiln B', dir })!.passed()).toBe(false);
    writeFileSync(helper, 'helper v2');
    expect(lintCache(model, 'model v1', { kiln: 'kiln A', dir })!.passed()).toBe(false);
    rmSync(helper);
    expect(lintCache(model, 'model v1', { kiln: 'kiln A', dir })!.passed()).toBe(false);
  });

  it('lints every time, without failing, where it cannot write', () => {
    const ro = join(root, 'read-only');
    writeFileSync(ro, 'a file, not a folder');
    const c = lintCache(model, 'model v1', { kiln: 'kiln A', dir: join(ro, 'cache') })!;
    expect(() => c.remember([model])).not.toThrow();
    expect(c.passed()).toBe(false);
    expect(readdirSync(dir).every((f) => f.endsWith('.json'))).toBe(true);
  });
});
