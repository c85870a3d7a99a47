import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../../src/ir/errors.ts';
import { checkWritable, writeFileAtomic } from '../../src/runtime/output-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-out-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('replaces the whole file and leaves no temporary behind', () => {
    const f = join(dir, 'a.json');
    writeFileSync(f, 'old contents, longer than the new ones');
    writeFileAtomic(f, '{"new":1}');
    expect(readFileSync(f, 'utf8')).toBe('{"new":1}');
    expect(readdirSync(dir)).toEqual(['a.json']);
  });

  it('a failed write is a KilnError naming the file, and the old file is untouched', () => {
    const f = join(dir, 'missing', 'b.json');
    let e: unknown;
    try {
      writeFileAtomic(f, 'x', 'report');
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).message).toBe(`cannot write report ${f}: ENOENT: no such file or directory`);
    expect(readdirSync(dir)).toEqual(['a.json']);
  });

  it('a directory in the way is named once, without the temporary file, and the temporary is removed', () => {
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    expect(() => writeFileAtomic(sub, 'x', 'IR dump')).toThrow(new RegExp(`^cannot write IR dump ${sub}: (EISDIR|ENOTEMPTY|EEXIST)[^']*$`));
    expect(readdirSync(dir).sort()).toEqual(['a.json', 'sub']);
    rmSync(sub, { recursive: true });
  });
});

describe('checkWritable', () => {
  it('accepts a new or existing file in an existing directory', () => {
    expect(() => checkWritable('--save', join(dir, 'new.safetensors'))).not.toThrow();
    expect(() => checkWritable('--save', join(dir, 'a.json'))).not.toThrow();
  });

  it.each([
    ['a missing directory', () => join(dir, 'nope', 'x'), `directory ${join(dir, 'nope')} does not exist`],
    ['a directory', () => dir, 'is a directory'],
    ['a file as the directory', () => join(dir, 'a.json', 'x'), `${join(dir, 'a.json')} is not a directory`],
  ])('rejects %s, naming the flag', (_what, path, problem) => {
    expect(() => checkWritable('--log', path())).toThrow(`--log ${path()}: ${problem}`);
  });
});
