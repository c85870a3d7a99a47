import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { idxImages, idxLabels, isGzip, parseIdx } from '../../../src/runtime/data/idx.ts';
import { readIdx, readIdxImages, readIdxLabels } from '../../../src/runtime/data/idx-file.ts';
import { idx, thrown } from '../helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kiln-idx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('IDX reader', () => {
  it('parses a small images file, raw and gzipped (by magic bytes, whatever the name)', () => {
    const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    const bytes = idx(0x08, [2, 3, 4], pixels);
    const raw = join(tmp, 'imgs-idx3-ubyte');
    const gz = join(tmp, 'imgs-idx3-ubyte.gz');
    const gzNoSuffix = join(tmp, 'imgs-gz-without-suffix');
    writeFileSync(raw, bytes);
    writeFileSync(gz, gzipSync(bytes));
    writeFileSync(gzNoSuffix, gzipSync(bytes));
    for (const f of [raw, gz, gzNoSuffix]) {
      const r = readIdxImages(f);
      expect([r.count, r.rows, r.cols]).toEqual([2, 3, 4]);
      expect(Array.from(r.images)).toEqual(Array.from(pixels));
    }
  });

  it('reads other IDX dtypes big-endian', () => {
    const body = new Uint8Array(8);
    new DataView(body.buffer).setFloat32(0, 1.5, false);
    new DataView(body.buffer).setFloat32(4, -2.25, false);
    const a = parseIdx(idx(0x0d, [2], body), 'f32.idx');
    expect(a.dtype).toBe('f32');
    expect(Array.from(a.data)).toEqual([1.5, -2.25]);
    const i16 = new Uint8Array([0xff, 0xfe, 0x01, 0x00]);
    expect(Array.from(parseIdx(idx(0x0b, [2], i16), 'i16.idx').data)).toEqual([-2, 256]);
  });

  it('rejects a bad magic number', () => {
    const e = thrown(() => parseIdx(Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]), 'zip.bin'));
    expect(e.message).toContain('zip.bin');
    expect(e.message).toMatch(/bad magic number 0x504b0304/);
    expect(e.hint).toBeDefined();
    expect(thrown(() => parseIdx(idx(0x07, [1], new Uint8Array(1)), 'x')).message).toMatch(/bad magic number 0x00000701/);
  });

  it('rejects a truncated file, saying expected vs actual bytes', () => {
    const f = join(tmp, 'short-idx3-ubyte');
    writeFileSync(f, idx(0x08, [10, 28, 28], new Uint8Array(100)));
    const e = thrown(() => readIdxImages(f));
    expect(e.message).toContain(f);
    expect(e.message).toContain('truncated');
    expect(e.message).toContain(`need ${16 + 7840} bytes`);
    expect(e.message).toContain(`file has ${16 + 100}`);
    expect(thrown(() => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0]), 'h')).message).toMatch(/truncated header/);
  });

  it('rejects a labels file where images are expected, and vice versa', () => {
    const f = join(tmp, 'labels-idx1-ubyte');
    writeFileSync(f, idx(0x08, [3], Uint8Array.from([1, 2, 3])));
    expect(thrown(() => readIdxImages(f)).message).toMatch(/expected u8 images with 3 dimensions .* or 4 .*found u8 with 1 dimension/);
    expect(Array.from(readIdxLabels(f))).toEqual([1, 2, 3]);
  });

  it('parses images and labels from bytes, and tells gzip by its magic', () => {
    const bytes = idx(0x08, [1, 2, 2], Uint8Array.from([1, 2, 3, 4]));
    expect(idxImages(bytes, 'page')).toEqual({ images: Uint8Array.from([1, 2, 3, 4]), count: 1, channels: 1, rows: 2, cols: 2 });
    // Colour images as [count, channels, rows, cols] (CHW, PyTorch's layout).
    const colour = idx(0x08, [2, 3, 1, 2], Uint8Array.from({ length: 12 }, (_, i) => i));
    expect(idxImages(colour, 'rgb')).toMatchObject({ count: 2, channels: 3, rows: 1, cols: 2 });
    expect(thrown(() => idxImages(idx(0x08, [2, 0, 1, 2], new Uint8Array(0)), 'rgb')).message).toMatch(/images have zero size 0x1x2/);
    expect(thrown(() => idxLabels(bytes, 'picked-file')).message).toMatch(/^picked-file: expected u8 labels with 1 dimension/);
    expect(isGzip(gzipSync(bytes))).toBe(true);
    expect(isGzip(bytes)).toBe(false);
    expect(isGzip(Uint8Array.from([0x1f]))).toBe(false);
  });

  it('rejects a corrupt gzip and a missing file', () => {
    const f = join(tmp, 'broken.gz');
    writeFileSync(f, gzipSync(idx(0x08, [3], Uint8Array.from([1, 2, 3]))).subarray(0, 12));
    expect(thrown(() => readIdx(f)).message).toMatch(/broken\.gz: looks gzipped but does not decompress/);
    const missing = join(tmp, 'nope-idx1-ubyte');
    expect(thrown(() => readIdx(missing)).message).toBe(`${missing}: file not found`);
  });
});
