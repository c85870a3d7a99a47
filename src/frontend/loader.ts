import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as api from './api.ts';
import { KilnError, type SourceLoc } from '../ir/errors.ts';
import { Module } from './module.ts';
import { callerLoc } from './source-loc.ts';
import { resolveTraining, type ResolvedTraining } from './training-options.ts';

const API_KEY = Symbol.for('kiln.api');
(globalThis as Record<symbol, unknown>)[API_KEY] = api;

// Model files import from 'kiln'; the bundle reads the running kiln's API from a global so the
// model's Module is the very class the tracer checks against, wherever the file lives.
const apiShim = `const k = globalThis[Symbol.for('kiln.api')];
export const Module = k.Module, nn = k.nn, F = k.F, Tensor = k.Tensor;`;

export interface LoadedModel {
  /** The model file as the user named it (relative to the working directory). */
  readonly file: string;
  readonly name: string;
  readonly model: Module;
  readonly training: ResolvedTraining;
  /** Builds a fresh instance (each trace names the modules of its own instance). */
  readonly create: () => Module;
}

export interface LoadOptions {
  /** Run the ts-morph checks first (default true). */
  lint?: boolean;
}

export async function loadModelFile(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const abs = resolve(path);
  const file = relative(process.cwd(), abs) || abs;
  const at: SourceLoc = { file, line: 1, col: 1 };
  if (!existsSync(abs) || !statSync(abs).isFile()) {
    throw new KilnError('no-file', `model file not found: ${file}`, undefined, 'pass the path of a .ts model file, e.g. samples/simple-cnn.ts');
  }
  if (!['.ts', '.mts', '.js', '.mjs'].includes(extname(abs))) {
    throw new KilnError('not-a-model', `${file} is not a TypeScript or JavaScript model file`, undefined, 'model files end in .ts (bundles from `kiln compile` are run with `kiln train BUNDLE`)');
  }
  if (opts.lint !== false) {
    const { lintModelFile } = await import('./lint.ts');
    await lintModelFile(file);
  }
  const exports = await importBundled(abs, file);
  const Ctor = exports.default;
  if (typeof Ctor !== 'function' || !(Ctor.prototype instanceof Module)) {
    throw new KilnError('no-default-module', `${file} has no default-exported Module subclass`, at, "declare the model as `export default class MyModel extends Module { ... }` with Module imported from 'kiln'");
  }
  const create = () => {
    try {
      return new (Ctor as new () => Module)();
    } catch (e) {
      if (e instanceof KilnError) throw e;
      throw new KilnError('model-error', `constructing ${Ctor.name} failed: ${(e as Error).message}`, callerLoc((e as Error).stack) ?? at, 'fix the model code at this line');
    }
  };
  const model = create();
  const trainingLoc = locateTraining(abs, file) ?? at;
  return { file, name: Ctor.name, model, training: resolveTraining(exports.training, trainingLoc), create };
}

/** Where `export const training` is, so option errors point at it. */
function locateTraining(abs: string, file: string): SourceLoc | undefined {
  const text = readFileSync(abs, 'utf8');
  const m = /export\s+const\s+training\b/.exec(text);
  if (!m) return undefined;
  const before = text.slice(0, m.index).split('\n');
  return { file, line: before.length, col: before.at(-1)!.length + 1 };
}

async function importBundled(abs: string, file: string): Promise<Record<string, unknown>> {
  const esbuild = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'kiln-model-'));
  const outfile = join(dir, 'model.mjs');
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [abs],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'inline',
      outfile,
      write: false,
      logLevel: 'silent',
      plugins: [
        {
          name: 'kiln-api',
          setup(build) {
            build.onResolve({ filter: /^kiln$/ }, () => ({ path: 'kiln', namespace: 'kiln-api' }));
            build.onLoad({ filter: /.*/, namespace: 'kiln-api' }, () => ({ contents: apiShim, loader: 'js' }));
          },
        },
      ],
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const first = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors?.[0];
    const loc = first?.location ? { file: first.location.file, line: first.location.line, col: first.location.column + 1 } : { file, line: 1, col: 1 };
    throw new KilnError('syntax', first?.text ?? String(e), loc, 'fix the model file so that it compiles');
  }
  try {
    writeFileSync(outfile, result.outputFiles[0]!.contents);
    // Stack traces through the bundle then point at the model's own lines (see source-loc.ts).
    process.setSourceMapsEnabled(true);
    return (await import(pathToFileURL(outfile).href)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError('model-error', `loading ${file} failed: ${(e as Error).message}`, callerLoc((e as Error).stack) ?? { file, line: 1, col: 1 }, 'fix the model code at this line');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
