import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkAgainst, decodeSafetensors, encodeSafetensors } from '../../src/runtime/safetensors.ts';
import { readSafetensors, writeSafetensors } from '../../src/runtime/safetensors-file.ts';
import { thrown } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'kiln-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const model = () => ({
  'conv1.weight': { shape: [2, 1, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => i / 7 - 1) },
  'conv1.bias': { shape: [2], data: Float32Array.from([0.5, -0.25]) },
  'bn.num_batches_tracked': { shape: [], data: Float32Array.from([938]) },
  'fc1.bias': { shape: [3], data: Float32Array.from([Math.PI, NaN, -Infinity]) },
});

/** A file with the given JSON header text (unpadded) and data bytes. */
function rawFile(name: string, header: string, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): string {
  const h = Buffer.from(header, 'utf8');
  const out = Buffer.alloc(8 + h.length + data.length);
  out.writeBigUInt64LE(headerLen ?? BigInt(h.length), 0);
  h.copy(out, 8);
  out.set(data, 8 + h.length);
  const f = join(tmp, name);
  writeFileSync(f, out);
  return f;
}

describe('safetensors', () => {
  it('round-trips f32 tensors, the i64 batch counter and metadata', () => {
    const f = join(tmp, 'model.safetensors');
    writeSafetensors(f, model(), { format: 'pt', epoch: '3' });
    const r = readSafetensors(f);
    expect(r.metadata).toEqual({ format: 'pt', epoch: '3' });
    for (const [name, t] of Object.entries(model())) {
      expect(r.tensors[name]!.shape).toEqual(t.shape);
      expect(Array.from(r.tensors[name]!.data)).toEqual(Array.from(t.data)); // bitwise: same f32 values, NaN included
    }
    expect(r.tensors['bn.num_batches_tracked']!.dtype).toBe('I64');
    expect(r.tensors['conv1.weight']!.dtype).toBe('F32');
  });

  it('pads the header with spaces to 8 bytes and lays data out as the reference writer does', () => {
    const f = join(tmp, 'layout.safetensors');
    writeSafetensors(f, model(), { format: 'pt' });
    const buf = readFileSync(f);
    const n = Number(buf.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = buf.toString('utf8', 8, 8 + n);
    expect(text).toMatch(/^\{.*\} *$/);
    const header = JSON.parse(text);
    // I64 first (8-byte aligned), then F32 by name.
    expect(header['bn.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [], data_offsets: [0, 8] });
    expect(header['conv1.bias'].data_offsets).toEqual([8, 16]);
    expect(header['conv1.weight'].data_offsets).toEqual([16, 88]);
    expect(header['fc1.bias'].data_offsets).toEqual([88, 100]);
    expect(buf.length).toBe(8 + n + 100);
    expect(buf.readBigInt64LE(8 + n)).toBe(938n);
    expect(buf.readFloatLE(8 + n + 8)).toBe(0.5);
  });

  it('encodes and decodes in memory the bytes the file functions write and read', () => {
    const f = join(tmp, 'same.safetensors');
    writeSafetensors(f, model(), { format: 'pt' });
    const bytes = encodeSafetensors(model(), { format: 'pt' });
    expect(Buffer.from(bytes).equals(readFileSync(f))).toBe(true);
    expect(decodeSafetensors(bytes, 'in memory')).toEqual(readSafetensors(f));
    expect(thrown(() => decodeSafetensors(bytes.subarray(0, 5), 'upload.safetensors')).message).toMatch(/^upload\.safetensors: too short .* 5 bytes/);
  });

  it('rejects a header that starts with a byte-order mark, as the reference reader does', () => {
    expect(thrown(() => readSafetensors(rawFile('bom.safetensors', '\ufeff{}'))).message).toMatch(/bom\.safetensors: header is not valid JSON/);
  });

  it('reads F64, F16 and BF16 as f32', () => {
    const data = new Uint8Array(8 + 4 + 4);
    const v = new DataView(data.buffer);
    v.setFloat64(0, 0.1, true);
    v.setUint16(8, 0x3c00, true); // f16 1.0
    v.setUint16(10, 0xc100, true); // f16 -2.5
    v.setUint16(12, 0x3fc0, true); // bf16 1.5
    v.setUint16(14, 0x0001, true); // bf16 bits 0x0001: an f32 subnormal, kept bit for bit
    const f = rawFile('dtypes.safetensors', JSON.stringify({
      a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] },
      b: { dtype: 'F16', shape: [2], data_offsets: [8, 12] },
      c: { dtype: 'BF16', shape: [2], data_offsets: [12, 16] },
    }), data);
    const r = readSafetensors(f).tensors;
    expect(r.a!.data[0]).toBe(Math.fround(0.1));
    expect(Array.from(r.b!.data)).toEqual([1, -2.5]);
    expect(r.c!.data[0]).toBe(1.5);
    expect(r.c!.data[1]).toBe(new Float32Array(new Uint32Array([0x00010000]).buffer)[0]);
  });

  it('writes atomically, leaving no temporary file', () => {
    const dir = mkdtempSync(join(tmp, 'atomic-'));
    const f = join(dir, 'ckpt.safetensors');
    writeSafetensors(f, model());
    writeSafetensors(f, model()); // overwrite in place
    expect(readdirSync(dir)).toEqual(['ckpt.safetensors']);
    const bad = join(tmp, 'no-such-dir', 'x.safetensors');
    const e = thrown(() => writeSafetensors(bad, model()));
    expect(e.message).toMatch(/^cannot write checkpoint \S*no-such-dir\/x\.safetensors: ENOENT/);
    expect(existsSync(`${bad}.tmp-${process.pid}`)).toBe(false);
  });

  it('explains a missing or too-short file', () => {
    const f = join(tmp, 'missing.safetensors');
    expect(thrown(() => readSafetensors(f)).message).toBe(`${f}: checkpoint not found`);
    const short = join(tmp, 'short.safetensors');
    writeFileSync(short, Uint8Array.from([1, 2, 3]));
    expect(thrown(() => readSafetensors(short)).message).toMatch(/short\.safetensors: too short .* 3 bytes/);
  });

  it('explains a header length beyond the file and a corrupt header', () => {
    const big = rawFile('biglen.safetensors', '{}', undefined, 1000n);
    expect(thrown(() => readSafetensors(big)).message).toBe(`${big}: header length 1000 exceeds the 2 bytes after the length field (truncated file, or not safetensors)`);
    const bad = rawFile('badjson.safetensors', '{"a": {"dtype": "F32",');
    const e = thrown(() => readSafetensors(bad));
    expect(e.message).toMatch(/badjson\.safetensors: header is not valid JSON/);
    expect(e.hint).toBeDefined();
    expect(thrown(() => readSafetensors(rawFile('arr.safetensors', '[1, 2]'))).message).toMatch(/header is not a JSON object/);
    expect(thrown(() => readSafetensors(rawFile('meta.safetensors', '{"__metadata__": {"a": 1}}'))).message).toMatch(/__metadata__\.a is 1, not a string/);
  });

  it('explains truncated data', () => {
    const f = join(tmp, 'trunc.safetensors');
    writeSafetensors(f, model());
    const buf = readFileSync(f);
    writeFileSync(f, buf.subarray(0, buf.length - 10));
    expect(thrown(() => readSafetensors(f)).message).toMatch(/trunc\.safetensors: tensor fc1\.bias: data_offsets \[88, 100\] run past the end of the data \(90 bytes; file truncated\?\)/);
  });

  it('explains bad offsets: wrong size, gaps, overlaps, malformed, uncovered bytes', () => {
    const d = new Uint8Array(16);
    const msg = (header: object, data = d) => thrown(() => readSafetensors(rawFile('off.safetensors', JSON.stringify(header), data))).message;
    expect(msg({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } })).toMatch(/tensor a: data_offsets \[0, 12\] span 12 bytes but F32 \[2\] needs 8/);
    expect(msg({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }))
      .toMatch(/tensor b: data_offsets \[12, 16\] leave a gap after the previous tensor \(expected begin 8\)/);
    expect(msg({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }))
      .toMatch(/tensor b: data_offsets \[4, 12\] overlap the previous tensor/);
    expect(msg({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } })).toMatch(/data_offsets \[8,0\] is not \[begin, end\]/);
    expect(msg({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } })).toMatch(/tensors cover 8 data bytes but the file has 16/);
    expect(msg({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } })).toMatch(/shape \[-1\] is not a list of non-negative integers/);
    expect(msg({ a: { dtype: 'I32', shape: [4], data_offsets: [0, 16] } })).toMatch(/tensor a has dtype I32, which kiln does not read/);
    expect(msg({ a: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } })).toMatch(/tensor a has dtype I64/);
  });

  it('checkAgainst lists every difference in one message', () => {
    const f = join(tmp, 'other.safetensors');
    writeSafetensors(f, {
      'conv1.weight': { shape: [32, 1, 3, 3], data: new Float32Array(288) },
      'fc1.weight': { shape: [10, 6272], data: new Float32Array(62720) },
      'fc2.bias': { shape: [10], data: new Float32Array(10) },
    });
    const { tensors } = readSafetensors(f);
    const expected = [
      { name: 'conv1.weight', shape: [32, 1, 3, 3] },
      { name: 'conv1.bias', shape: [32] },
      { name: 'fc1.weight', shape: [10, 5408] },
    ];
    const e = thrown(() => checkAgainst(f, tensors, expected));
    expect(e.message).toBe([
      `${f}: checkpoint does not match the model (3 differences):`,
      '    conv1.bias: missing from the file (model expects [32])',
      '    fc1.weight: file has [10, 6272], model expects [10, 5408]',
      '    fc2.bias: in the file [10] but not in the model',
    ].join('\n'));
    expect(() => checkAgainst(f, tensors, Object.entries(tensors).map(([name, t]) => ({ name, shape: t.shape })))).not.toThrow();
  });
});
