import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KilnError } from '../ir/errors.ts';
import type { Program } from '../ir/program.ts';
import { verifyProgram } from '../ir/verify-program.ts';
import type { Target } from '../ir/target.ts';
import { writeFileAtomic } from '../runtime/output-file.ts';
import { resolveTraining, type ResolvedTraining } from './training-options.ts';

/**
 * A compiled model in one file (`kiln compile`): the model's code bundled by esbuild (so steps
 * of other batch sizes can still be traced), the training options it was compiled with, and the
 * planned Programs of its training and evaluation steps for each target they were compiled for,
 * keyed `train/64`, `eval/1000`. Running a bundle skips the linter, esbuild and the compiler
 * passes for those steps.
 */
export interface Bundle {
  readonly format: 'kiln-bundle';
  /** 3: the code runs its top level when called (loader.ts), not when imported. */
  readonly version: 3;
  readonly name: string;
  /** The model file it was compiled from, for messages. */
  readonly file: string;
  readonly code: string;
  readonly training: ResolvedTraining;
  readonly compiled: readonly Precompiled[];
  /**
   * SHA-256 of the rest of the bundle as written: a bundle edited after `kiln compile` (its code,
   * options or programs) is refused rather than run with programs that no longer match its code.
   */
  readonly sha256: string;
}

/** Programs compiled for one target (its limits and cost model). */
export interface Precompiled {
  readonly target: Target;
  readonly programs: Readonly<Record<string, Program>>;
}

export const BUNDLE_EXT = '.kiln';

export function programKey(stage: string, batchSize: number): string {
  return `${stage}/${batchSize}`;
}

/**
 * The bundle's Program for a step on `target`: one compiled by the same cost model within limits
 * the target meets (the wasm one for the reference backend, the portable WebGPU one for any
 * adapter), the least constrained of those; undefined when none is (then the passes compile it).
 */
export function precompiledFor(compiled: readonly Precompiled[], target: Target, stage: string, batchSize: number): Program | undefined {
  const fits = compiled.filter((c) => c.target.flopsPerByte === target.flopsPerByte && c.target.maxStorageBuffers <= target.maxStorageBuffers && c.programs[programKey(stage, batchSize)]);
  fits.sort((a, b) => b.target.maxStorageBuffers - a.target.maxStorageBuffers);
  return fits[0]?.programs[programKey(stage, batchSize)];
}

// JSON has no Infinity (the wasm target's storage-buffer limit, a -Inf constant): written as strings.
const NON_FINITE = new Set(['Infinity', '-Infinity', 'NaN']);
const writeNumber = (_: string, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);
const readNumber = (_: string, v: unknown) => (typeof v === 'string' && NON_FINITE.has(v) ? Number(v) : v);

const digest = (body: Omit<Bundle, 'sha256'>) => createHash('sha256').update(JSON.stringify(body, writeNumber)).digest('hex');

/** Written to a temporary file and renamed, so a failed write never leaves half a bundle. */
export function writeBundle(path: string, body: Omit<Bundle, 'sha256'>): void {
  const bundle: Bundle = { ...body, sha256: digest(body) };
  writeFileAtomic(path, JSON.stringify(bundle, writeNumber), 'bundle', 'choose a writable path with -o');
}

/** The bundle's training options are resolved ones: resolving them again must change nothing. */
function checkTraining(training: unknown, fail: (what: string) => never): void {
  let resolved: ResolvedTraining;
  try {
    // A resolved optimizer carries its schedule; a model file writes it beside the optimizer.
    const { schedule, ...optimizer } = ((training as { optimizer?: object } | null)?.optimizer ?? {}) as Record<string, unknown>;
    resolved = resolveTraining({ ...(training as object), optimizer, ...(schedule === undefined ? {} : { schedule }) }, { file: '', line: 0, col: 0 });
  } catch (e) {
    return fail(`its training options do not verify: ${(e as Error).message.replace(/^training: /, '')}`);
  }
  const t = training as Record<string, unknown>;
  for (const [k, v] of Object.entries(resolved)) {
    if (JSON.stringify(t[k]) !== JSON.stringify(v)) fail(`its training options do not verify: ${k} is ${t[k] === undefined ? 'missing' : `${JSON.stringify(t[k])}, not ${JSON.stringify(v)}`}`);
  }
}

export function readBundle(path: string, file: string): Bundle {
  const fail = (what: string): never => {
    throw new KilnError('bundle', `${file} is not a kiln bundle: ${what}`, undefined, 'rebuild it with `kiln compile MODEL.ts -o FILE.kiln`');
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'), readNumber);
  } catch (e) {
    return fail(`it does not parse as JSON (${(e as Error).message})`);
  }
  const b = parsed as Partial<Bundle>;
  if (b.format !== 'kiln-bundle') fail('no "format": "kiln-bundle" field');
  if (b.version !== 3) fail(`version ${String(b.version)} is not supported by this kiln (it reads version 3)`);
  if (typeof b.code !== 'string' || typeof b.name !== 'string' || typeof b.training !== 'object' || !Array.isArray(b.compiled) || typeof b.sha256 !== 'string') fail('fields are missing or of the wrong type');
  const { sha256, ...body } = b as Bundle;
  if (digest(body) !== sha256) fail('it was changed after kiln compile wrote it (its SHA-256 does not match)');
  // The checksum guards against edits; a bundle whose checksum was redone must still hold options
  // kiln could have written (a missing epochs ran "undefined epoch"; batchSize 0 failed in the model).
  checkTraining(body.training, fail);
  // The checksum guards against edits, the verifier against a kiln that wrote a wrong program.
  for (const c of body.compiled) {
    for (const [key, p] of Object.entries(c.programs)) {
      let problems: string[];
      try {
        problems = verifyProgram(p, c.target);
      } catch (e) {
        problems = [`it is malformed (${(e as Error).message})`];
      }
      if (problems.length > 0) fail(`its ${key} program for ${c.target.name} does not verify: ${problems[0]}`);
    }
  }
  return b as Bundle;
}
