/**
 * safetensors checkpoints, the format PyTorch users load with `safetensors.torch.load_file`:
 * an 8-byte little-endian u64 header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { key: value } }`, then
 * the raw little-endian data, offsets relative to the end of the header.
 *
 * kiln writes F32, plus I64 for BatchNorm's `num_batches_tracked` (PyTorch keeps that buffer as
 * int64, and load_state_dict rejects another dtype). It reads F32, F64, F16, BF16 (converted to
 * f32) and I64 for `num_batches_tracked`. Typed-array views assume a little-endian host, as every
 * platform Node and the browsers support is.
 *
 * This module works on bytes and imports no Node module, so that a browser page can use it;
 * safetensors-file.ts reads and writes files.
 */
import { KilnError } from '../ir/errors.ts';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface StoredTensor extends Tensor {
  /** The dtype in the file; `data` is always f32. */
  dtype: string;
}

export interface Safetensors {
  tensors: Record<string, StoredTensor>;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER = 100_000_000;

const DTYPE_SIZE: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8 };

const isCounter = (name: string) => name.endsWith('num_batches_tracked');

function fail(file: string, message: string, hint?: string): never {
  throw new KilnError('checkpoint', `${file}: ${message}`, undefined, hint);
}

const CORRUPT_HINT = 'the file is damaged or not a safetensors checkpoint; write it again (kiln train --save, or safetensors.torch.save_file)';

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The file's bytes for `tensors` (F32; I64 for names ending in num_batches_tracked) and string metadata. */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  // Data ordered as the reference writer does: wider dtypes first, then by name, so every tensor
  // starts aligned to its element size (the header is padded to 8 bytes).
  const names = Object.keys(tensors).sort((a, b) => Number(isCounter(b)) - Number(isCounter(a)) || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors metadata ${k} must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new TypeError('a tensor cannot be named __metadata__');
    const t = tensors[name]!;
    const n = numel(t.shape);
    if (t.data.length !== n) {
      throw new RangeError(`tensor ${name}: shape [${t.shape.join(', ')}] holds ${n} values but data has ${t.data.length}`);
    }
    const dtype = isCounter(name) ? 'I64' : 'F32';
    const bytes = n * DTYPE_SIZE[dtype]!;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset).fill(0x20);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  const base = 8 + padded;
  for (const name of names) {
    const t = tensors[name]!;
    const begin = base + (header[name] as { data_offsets: [number, number] }).data_offsets[0];
    if (isCounter(name)) {
      for (let i = 0; i < t.data.length; i++) view.setBigInt64(begin + 8 * i, BigInt(Math.round(t.data[i]!)), true);
    } else {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), begin);
    }
  }
  return out;
}

function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decode(file: string, name: string, dtype: string, bytes: Uint8Array, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      new Uint8Array(out.buffer).set(bytes);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = half(view.getUint16(2 * i, true));
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    default:
      fail(file, `tensor ${name} has unsupported dtype ${dtype}`);
  }
  return out;
}

function isShape(s: unknown): s is number[] {
  return Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Validates and decodes a safetensors file's bytes; every problem is a KilnError naming `file`. */
export function decodeSafetensors(buf: Uint8Array, file: string): Safetensors {
  if (buf.length < 8) fail(file, `too short for a safetensors file: ${buf.length} bytes, need at least 8 for the header length`, CORRUPT_HINT);
  const headerLen = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getBigUint64(0, true);
  if (headerLen > BigInt(buf.length - 8)) {
    fail(file, `header length ${headerLen} exceeds the ${buf.length - 8} bytes after the length field (truncated file, or not safetensors)`, CORRUPT_HINT);
  }
  if (headerLen > BigInt(MAX_HEADER)) fail(file, `header length ${headerLen} exceeds the 100 MB limit`, CORRUPT_HINT);
  const hlen = Number(headerLen);
  let header: unknown;
  try {
    // ignoreBOM keeps a leading BOM, which JSON.parse rejects as the reference reader does.
    header = JSON.parse(new TextDecoder('utf-8', { ignoreBOM: true }).decode(buf.subarray(8, 8 + hlen)));
  } catch (e) {
    fail(file, `header is not valid JSON (${(e as Error).message})`, CORRUPT_HINT);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(file, 'header is not a JSON object', CORRUPT_HINT);
  }
  const dataStart = 8 + hlen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, '__metadata__ is not an object of strings', CORRUPT_HINT);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `__metadata__.${k} is ${JSON.stringify(v)}, not a string`, CORRUPT_HINT);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (typeof e !== 'object' || e === null) fail(file, `tensor ${name}: header entry is not an object`, CORRUPT_HINT);
    const { dtype, shape, data_offsets: offs } = e;
    if (typeof dtype !== 'string') fail(file, `tensor ${name}: missing dtype`, CORRUPT_HINT);
    if (DTYPE_SIZE[dtype] === undefined || (dtype === 'I64' && !isCounter(name))) {
      fail(file, `tensor ${name} has dtype ${dtype}, which kiln does not read`,
        'kiln reads F32, F64, F16 and BF16 tensors, and I64 only for num_batches_tracked; convert the checkpoint, e.g. {k: v.float() for k, v in sd.items()}');
    }
    if (!isShape(shape)) fail(file, `tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`, CORRUPT_HINT);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      fail(file, `tensor ${name}: data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`, CORRUPT_HINT);
    }
    const [begin, end] = offs as [number, number];
    const expect = numel(shape) * DTYPE_SIZE[dtype]!;
    if (end - begin !== expect) {
      fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${expect}`, CORRUPT_HINT);
    }
    if (end > dataLen) {
      fail(file, `tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes; file truncated?)`, CORRUPT_HINT);
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  // Like the reference reader: the tensors must tile the data exactly, no gaps, no overlaps.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of byOffset) {
    if (e.begin !== at) {
      fail(file, `tensor ${e.name}: data_offsets [${e.begin}, ${e.end}] ${e.begin < at ? 'overlap the previous tensor' : 'leave a gap after the previous tensor'} (expected begin ${at})`, CORRUPT_HINT);
    }
    at = e.end;
  }
  if (at !== dataLen) {
    fail(file, `tensors cover ${at} data bytes but the file has ${dataLen} after the header`, CORRUPT_HINT);
  }
  const tensors: Record<string, StoredTensor> = {};
  for (const e of entries) {
    const bytes = buf.subarray(dataStart + e.begin, dataStart + e.end);
    tensors[e.name] = { shape: e.shape, dtype: e.dtype, data: decode(file, e.name, e.dtype, bytes, numel(e.shape)) };
  }
  return { tensors, metadata };
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Compares a checkpoint's tensors with the names and shapes a model expects; throws one KilnError
 * listing every missing name, unexpected name and shape mismatch.
 */
export function checkAgainst(path: string, tensors: Record<string, Tensor>, expected: { name: string; shape: readonly number[] }[]): void {
  const problems: string[] = [];
  const want = new Set(expected.map((e) => e.name));
  for (const e of expected) {
    const t = tensors[e.name];
    if (t === undefined) problems.push(`${e.name}: missing from the file (model expects ${fmt(e.shape)})`);
    else if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      problems.push(`${e.name}: file has ${fmt(t.shape)}, model expects ${fmt(e.shape)}`);
    }
  }
  for (const [name, t] of Object.entries(tensors)) {
    if (!want.has(name)) problems.push(`${name}: in the file ${fmt(t.shape)} but not in the model`);
  }
  if (problems.length > 0) {
    throw new KilnError('checkpoint', `${path}: checkpoint does not match the model (${problems.length} difference${problems.length > 1 ? 's' : ''}):\n    ${problems.join('\n    ')}`,
      undefined, 'load a checkpoint saved from this model, or change the model to match the checkpoint');
  }
  // Weights that are already NaN or infinite would train to a NaN loss at step 0 and look like
  // divergence; name the first bad value instead.
  for (const e of expected) {
    const data = tensors[e.name]!.data;
    const at = data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) throw new KilnError('checkpoint', `${path}: ${e.name} holds ${data[at]} at element ${at}: the weights are not finite`, undefined, 'these weights come from a run that diverged or a broken file; load others');
  }
}
