/**
 * Reader for the IDX format that MNIST ships in: a 4-byte magic number (two zero bytes, a dtype
 * code, the number of dimensions), one big-endian u32 per dimension, then the values big-endian
 * in row-major order. Files may be raw or gzipped (detected by the gzip magic bytes, not only by
 * a `.gz` name, because renamed downloads are common).
 *
 * This module parses bytes and imports no Node module, so that a browser page can use it;
 * idx-file.ts reads (and gunzips) files.
 */
import { KilnError } from '../../ir/errors.ts';

export type IdxDtype = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  /** For u8 a view into the file's bytes (no copy); other dtypes are converted from big-endian. */
  data: IdxData;
}

const DTYPES: Record<number, { dtype: IdxDtype; size: number }> = {
  0x08: { dtype: 'u8', size: 1 },
  0x09: { dtype: 'i8', size: 1 },
  0x0b: { dtype: 'i16', size: 2 },
  0x0c: { dtype: 'i32', size: 4 },
  0x0d: { dtype: 'f32', size: 4 },
  0x0e: { dtype: 'f64', size: 8 },
};

const IDX_HINT =
  'expected an IDX file such as MNIST\'s train-images-idx3-ubyte (raw or .gz); re-download it or point kiln at the right file';

/** Throws the KilnError every IDX problem is: the file named, with a hint. */
export function idxFail(file: string, message: string, hint = IDX_HINT): never {
  throw new KilnError('data', `${file}: ${message}`, undefined, hint);
}

function hex(n: number, width = 8): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}

/** Whether the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parse IDX bytes; `file` only names the source in error messages. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) idxFail(file, `too short for an IDX header: ${bytes.length} bytes, need at least 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const code = bytes[2]!;
  const ndim = bytes[3]!;
  const kind = DTYPES[code];
  if (bytes[0] !== 0 || bytes[1] !== 0 || kind === undefined || ndim === 0) {
    idxFail(file, `bad magic number ${hex(magic)}: not an IDX file (expected ${hex(0x803)} for images or ${hex(0x801)} for labels)`);
  }
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) {
    idxFail(file, `truncated header: ${ndim} dimensions need ${headerBytes} header bytes, file has ${bytes.length}`);
  }
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const n = view.getUint32(4 + 4 * d, false);
    dims.push(n);
    count *= n;
  }
  const expected = headerBytes + count * kind.size;
  if (bytes.length !== expected) {
    const what = bytes.length < expected ? 'truncated' : 'has trailing bytes';
    idxFail(file, `${what}: dims [${dims.join(', ')}] of ${kind.dtype} need ${expected} bytes (${headerBytes} header + ${count * kind.size} data), file has ${bytes.length}`,
      bytes.length < expected ? 'the download is probably incomplete; download the file again' : IDX_HINT);
  }
  const off = headerBytes;
  let data: IdxData;
  switch (kind.dtype) {
    case 'u8':
      data = bytes.subarray(off, expected);
      break;
    case 'i8':
      data = new Int8Array(bytes.buffer, bytes.byteOffset + off, count);
      break;
    case 'i16': {
      const a = new Int16Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt16(off + 2 * i, false);
      data = a;
      break;
    }
    case 'i32': {
      const a = new Int32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt32(off + 4 * i, false);
      data = a;
      break;
    }
    case 'f32': {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat32(off + 4 * i, false);
      data = a;
      break;
    }
    case 'f64': {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat64(off + 8 * i, false);
      data = a;
      break;
    }
  }
  return { dtype: kind.dtype, dims, data };
}

export interface IdxImages {
  /** Raw pixels, count*channels*rows*cols, row-major (CHW per image). */
  images: Uint8Array;
  count: number;
  channels: number;
  rows: number;
  cols: number;
}

/**
 * An images file's (decompressed) bytes: u8, 3-d [count, rows, cols] (magic 0x00000803, MNIST's)
 * or 4-d [count, channels, rows, cols] (magic 0x00000804: colour images, CHW as PyTorch's).
 */
export function idxImages(bytes: Uint8Array, file: string): IdxImages {
  const a = parseIdx(bytes, file);
  if (a.dtype !== 'u8' || (a.dims.length !== 3 && a.dims.length !== 4)) {
    idxFail(file, `expected u8 images with 3 dimensions [count, rows, cols] (magic ${hex(0x803)}) or 4 [count, channels, rows, cols] (magic ${hex(0x804)}), found ${a.dtype} with ${a.dims.length} dimension(s) [${a.dims.join(', ')}]`,
      'is this a labels file? images files are named *-images-idx3-ubyte');
  }
  const [count, channels, rows, cols] = (a.dims.length === 3 ? [a.dims[0], 1, a.dims[1], a.dims[2]] : a.dims) as [number, number, number, number];
  if (channels === 0 || rows === 0 || cols === 0) idxFail(file, `images have zero size ${channels}x${rows}x${cols}`);
  return { images: a.data as Uint8Array, count, channels, rows, cols };
}

/** A labels file's (decompressed) bytes: u8, 1-d [count] (magic 0x00000801). */
export function idxLabels(bytes: Uint8Array, file: string): Uint8Array {
  const a = parseIdx(bytes, file);
  if (a.dtype !== 'u8' || a.dims.length !== 1) {
    idxFail(file, `expected u8 labels with 1 dimension [count] (magic ${hex(0x801)}), found ${a.dtype} with ${a.dims.length} dimension(s) [${a.dims.join(', ')}]`,
      'is this an images file? labels files are named *-labels-idx1-ubyte');
  }
  return a.data as Uint8Array;
}

/** Throws naming the index of the first label >= numClasses. */
export function checkLabels(labels: Uint8Array, numClasses: number, file: string, hint = 'pass a larger class count (numClasses) or fix the labels file'): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= numClasses) {
      idxFail(file, `label ${labels[i]} at index ${i} is out of range for ${numClasses} classes (labels must be 0..${numClasses - 1})`, hint);
    }
  }
}

/** Largest label + 1 (0 for no labels). */
export function labelRange(labels: Uint8Array): number {
  let max = -1;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > max) max = labels[i]!;
  return max + 1;
}
