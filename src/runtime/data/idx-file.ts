/** IDX files in Node: reading and gunzipping around idx.ts's parsers. */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { idxFail, idxImages, idxLabels, isGzip, parseIdx, type IdxArray, type IdxImages } from './idx.ts';

/** The file's bytes, gunzipped when they start with the gzip magic 1f 8b. */
export function readMaybeGzipped(file: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    idxFail(file, code === 'ENOENT' ? 'file not found' : `cannot read file (${(e as Error).message})`,
      'check the path; MNIST files are named train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte');
  }
  if (isGzip(bytes)) {
    try {
      return gunzipSync(bytes);
    } catch (e) {
      idxFail(file, `looks gzipped but does not decompress (${(e as Error).message})`,
        'the download is probably incomplete; download the file again');
    }
  }
  // A `.gz` name on raw bytes is accepted as raw IDX; the magic check still guards it.
  return bytes;
}

export function readIdx(file: string): IdxArray {
  return parseIdx(readMaybeGzipped(file), file);
}

/** An images file, raw or gzipped: u8, 3-d [count, rows, cols]. */
export function readIdxImages(file: string): IdxImages {
  return idxImages(readMaybeGzipped(file), file);
}

/** A labels file, raw or gzipped: u8, 1-d [count]. */
export function readIdxLabels(file: string): Uint8Array {
  return idxLabels(readMaybeGzipped(file), file);
}
