import { KilnError } from '../../ir/errors.ts';
import { datasetFromBytes, FILES, type Dataset, type Normalize } from '../data/dataset.ts';
import { isGzip } from '../data/idx.ts';
import type { StandaloneBundle } from './bundle.ts';

export type DataFiles = Record<keyof typeof FILES, Uint8Array>;

/** Unpacks gzip with DecompressionStream (Node 18+ and every current browser). */
export async function gunzip(bytes: Uint8Array, file: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new KilnError('data', `${file}: looks gzipped but does not decompress (${(e as Error).message})`, undefined, 'the download is probably incomplete; download the file again');
  }
}

/**
 * A dataset from the four IDX files' bytes, raw or gzipped (detected by their magic bytes), as a
 * page gets them from a file picker; `names` name them in messages.
 */
export async function datasetFromFiles(name: string, files: DataFiles, names: Record<keyof typeof FILES, string>, normalize: Normalize): Promise<Dataset> {
  const keys = Object.keys(FILES) as (keyof typeof FILES)[];
  const raw = await Promise.all(keys.map((k) => (isGzip(files[k]) ? gunzip(files[k], names[k]) : files[k])));
  return datasetFromBytes(name, Object.fromEntries(keys.map((k, i) => [k, raw[i]!])) as DataFiles, names, { normalize });
}

/** The dataset the bundle carries (`kiln compile --data`), or a message saying it carries none. */
export async function bundledDataset(bundle: StandaloneBundle): Promise<Dataset> {
  const m = bundle.manifest;
  if (!m.data) throw new KilnError('data', 'this bundle carries no dataset (it was compiled with --data none)', undefined, 'give the four IDX files: --data DIR in Node, the file picker in the page');
  const keys = Object.keys(m.data.files) as (keyof typeof FILES)[];
  const bytes = await Promise.all(keys.map((k) => bundle.file(m.data!.files[k])));
  const files = Object.fromEntries(keys.map((k, i) => [k, bytes[i]!])) as DataFiles;
  const names = Object.fromEntries(keys.map((k) => [k, bundle.where(m.data!.files[k])])) as Record<keyof typeof FILES, string>;
  return datasetFromFiles(m.data.name, files, names, m.training.normalize);
}
