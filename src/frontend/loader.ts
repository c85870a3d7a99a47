import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as api from './api.ts';
import { kilnCacheDir } from '../runtime/kiln-cache.ts';
import { underTimeLimit } from './time-limit.ts';
import { KilnError, type SourceLoc } from '../ir/errors.ts';
import { Module } from './module.ts';
import type { Precompiled } from './bundle.ts';
import { BUNDLE_EXT, readBundle } from './bundle.ts';
import { callerLoc } from './source-loc.ts';
import { resolveTraining, type ResolvedTraining } from './training-options.ts';

const API_KEY = Symbol.for('kiln.api');
(globalThis as Record<symbol, unknown>)[API_KEY] = api;

// Model files import from 'kiln'; the bundle reads the running kiln's API from a global so the
// model's Module is the very class the tracer checks against, wherever the file lives.
const apiShim = `const k = globalThis[Symbol.for('kiln.api')];
export const ${Object.keys(api).map((name) => `${name} = k.${name}`).join(', ')};`;

export interface LoadedModel {
  /** The model file as the user named it (relative to the working directory). */
  readonly file: string;
  readonly name: string;
  readonly model: Module;
  readonly training: ResolvedTraining;
  /** Builds a fresh instance (each trace names the modules of its own instance). */
  readonly create: () => Module;
  /** The model's code bundled by esbuild: what `kiln compile` stores. */
  readonly code: string;
  /** Precompiled Programs when loaded from a bundle, keyed `train/64`, `eval/1000`. */
  readonly compiled?: readonly Precompiled[];
  /**
   * The checks' verdict: settled already, unless `lintAside` left them running on a worker. The
   * caller must await it before it trains or reports anything of the model's as sound.
   */
  readonly checked: Promise<void>;
}

export interface LoadOptions {
  /** Run the ts-morph checks first (default true). */
  lint?: boolean;
  /** Skip the checks for a file that passed them unchanged before (lint-cache.ts); default: the user's cache folder. */
  lintCache?: string | null;
  /** Called when the checks run (they take about a second), not when the cache knows the file passed. */
  onLint?: (file: string) => void;
  /**
   * Run the checks on a worker and return without waiting for them (`checked` settles with their
   * verdict); a failure to bundle or construct the model still waits, and reports the checks'
   * error where they find one.
   */
  lintAside?: boolean;
}

/** Loads a model file (.ts, .js) or a bundle written by `kiln compile` (.kiln). */
export async function loadModelFile(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const abs = resolve(path);
  const file = relative(process.cwd(), abs) || abs;
  if (!existsSync(abs) || !statSync(abs).isFile()) {
    throw new KilnError('no-file', `model file not found: ${file}`, undefined, 'pass the path of a .ts model file, e.g. samples/simple-cnn.ts');
  }
  if (extname(abs) === BUNDLE_EXT) {
    const b = readBundle(abs, file);
    const loaded = instantiate(await importCode(b.code, file), b.file, b.code, () => b.training);
    return { ...loaded, compiled: b.compiled, checked: Promise.resolve() };
  }
  if (!['.ts', '.mts', '.js', '.mjs'].includes(extname(abs))) {
    throw new KilnError('not-a-model', `${file} is not a model file`, undefined, `model files end in .ts (or .js); compiled bundles end in ${BUNDLE_EXT}`);
  }
  // esbuild bundles in a process of its own: it works while the linter type-checks here. A lint
  // error is the one reported (it says more than esbuild's about the same mistake).
  const bundling = bundleModel(abs, file);
  bundling.catch(() => {});
  let checked = Promise.resolve();
  if (opts.lint !== false) {
    const lint = await import('./lint.ts');
    const lintOpts = { cache: opts.lintCache === undefined ? kilnCacheDir() : opts.lintCache, onRun: opts.onLint && (() => opts.onLint!(file)) };
    if (opts.lintAside) {
      checked = lint.lintModelFileAside(file, lintOpts);
      // Handled here so that a verdict nobody awaits yet is no unhandled rejection; the caller's
      // await still sees it.
      checked.catch(() => {});
    } else {
      await lint.lintModelFile(file, lintOpts);
    }
  }
  try {
    const code = await bundling;
    const at: SourceLoc = { file, line: 1, col: 1 };
    return { ...instantiate(await importCode(code, file), file, code, (raw) => resolveTraining(raw, locateTraining(abs, file) ?? at)), checked };
  } catch (e) {
    await checked;
    throw e;
  }
}

/**
 * Runs `work` on a model whose checks may still be running (`lintAside`). If `work` fails, the
 * checks are awaited first: their error, where they find one, says more about the same mistake
 * (a tensor in an `if` that tracing took one branch of). If it succeeds, the result is returned
 * once they pass (`undo` releasing what it made if they do not), or at once with `awaitChecks`
 * false, for a caller that awaits `loaded.checked` itself before anything counts on it.
 */
export async function whileChecking<T>(loaded: LoadedModel, work: () => Promise<T>, opts: { undo?: (made: T) => void; awaitChecks?: boolean } = {}): Promise<T> {
  let made: T;
  try {
    made = await work();
  } catch (e) {
    await loaded.checked;
    throw e;
  }
  if (opts.awaitChecks === false) return made;
  try {
    await loaded.checked;
  } catch (e) {
    opts.undo?.(made);
    throw e;
  }
  return made;
}

function instantiate(exports: Record<string, unknown>, file: string, code: string, training: (raw: unknown) => ResolvedTraining): Omit<LoadedModel, 'checked'> {
  const at: SourceLoc = { file, line: 1, col: 1 };
  const Ctor = exports.default;
  if (typeof Ctor !== 'function' || !(Ctor.prototype instanceof Module)) {
    throw new KilnError('no-default-module', `${file} has no default-exported Module subclass`, at, "declare the model as `export default class MyModel extends Module { ... }` with Module imported from 'kiln'");
  }
  const create = () => {
    try {
      return underTimeLimit(`constructing ${Ctor.name}`, at, () => new (Ctor as new () => Module)());
    } catch (e) {
      if (e instanceof KilnError) throw e;
      throw new KilnError('model-error', `constructing ${Ctor.name} failed: ${(e as Error).message}`, callerLoc((e as Error).stack) ?? at, 'fix the model code at this line');
    }
  };
  return { file, name: Ctor.name, model: create(), training: training(exports.training), create, code };
}

/** Where `export const training` is, so option errors point at it. */
function locateTraining(abs: string, file: string): SourceLoc | undefined {
  const text = readFileSync(abs, 'utf8');
  const m = /export\s+const\s+training\b/.exec(text);
  if (!m) return undefined;
  const before = text.slice(0, m.index).split('\n');
  return { file, line: before.length, col: before.at(-1)!.length + 1 };
}

/** The model file and its local imports as one ESM module, with an inline source map. */
async function bundleModel(abs: string, file: string): Promise<string> {
  const esbuild = await import('esbuild');
  try {
    const result = await esbuild.build({
      entryPoints: [abs],
      bundle: true,
      // CommonJS inside an exported function (MODULE_HEAD): importing the file only defines the
      // function; the model's top-level code runs when importCode calls it, under the time limit.
      format: 'cjs',
      banner: { js: MODULE_HEAD },
      footer: { js: '}' },
      platform: 'node',
      target: 'node20',
      sourcemap: 'external',
      outfile: join(tmpdir(), 'model.mjs'),
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
    const map = result.outputFiles.find((f) => f.path.endsWith('.map'))!;
    const code = result.outputFiles.find((f) => f.path.endsWith('.mjs'))!;
    return withAbsoluteSourceMap(code.text, JSON.parse(map.text), dirname(code.path));
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { file: string; line: number; column: number } }[] }).errors?.[0];
    const loc = first?.location ? { file: first.location.file, line: first.location.line, col: first.location.column + 1 } : { file, line: 1, col: 1 };
    throw new KilnError('syntax', first?.text ?? String(e), loc, 'fix the model file so that it compiles');
  }
}

/**
 * Inlines the source map with absolute paths as its sources: the bundle is imported from a
 * temporary folder (or later, from a .kiln file), so paths relative to where esbuild put it would
 * point nowhere, and stack traces must name the model file itself (see source-loc.ts).
 */
function withAbsoluteSourceMap(code: string, map: { sources: string[] }, outDir: string): string {
  map.sources = map.sources.map((s) => (s.includes(':') ? s : resolve(outDir, s)));
  const body = code.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  return `${body}//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`;
}

/** How bundled model code begins: see bundleModel. A bundle's code that does not is refused. */
const MODULE_HEAD = 'export default function kilnModel(require, module, exports) {';

async function importCode(code: string, file: string): Promise<Record<string, unknown>> {
  if (!code.startsWith(MODULE_HEAD)) {
    throw new KilnError('bundle', `${file}: its code is not a model bundled by this kiln`, undefined, 'rebuild it with `kiln compile MODEL.ts -o FILE.kiln`');
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-model-'));
  const outfile = join(dir, 'model.mjs');
  try {
    writeFileSync(outfile, code);
    // Stack traces through the bundle then point at the model's own lines (see source-loc.ts).
    process.setSourceMapsEnabled(true);
    const init = ((await import(pathToFileURL(outfile).href)) as { default: (req: NodeJS.Require, module: { exports: object }, exports: object) => void }).default;
    const module = { exports: {} };
    // The top-level code of the model (and of a bundle someone edited) may loop forever too.
    underTimeLimit(`loading ${file}`, { file, line: 1, col: 1 }, () => init(createRequire(outfile), module, module.exports));
    return module.exports as Record<string, unknown>;
  } catch (e) {
    if (e instanceof KilnError) throw e;
    // A frame in the temporary copy (code the source map does not cover: an edited bundle) names
    // a file that is gone by the time the user reads it; the model file is named instead.
    const loc = callerLoc((e as Error).stack);
    const inModel = loc !== undefined && !resolve(loc.file).startsWith(dir);
    throw new KilnError('model-error', `loading ${file} failed: ${(e as Error).message}`, inModel ? loc : { file, line: 1, col: 1 }, inModel ? 'fix the model code at this line' : 'fix the model code, then load it again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
