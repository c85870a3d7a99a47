import type { WasmStateLayout, WasmStep } from '../../codegen/artifact.ts';
import type { ResolvedTraining } from '../../frontend/training-options.ts';
import type { Normalize } from '../data/dataset.ts';
import { KilnError } from '../../ir/errors.ts';

/**
 * manifest.json of a standalone bundle (`kiln compile --standalone`): what the folder holds and
 * how to run it, with a SHA-256 of every other file. kiln-runtime.mjs reads it in Node and in a
 * page; kiln writes it (src/cli/standalone.ts).
 */
export const STANDALONE_FORMAT = 'kiln-standalone';
/** Version 2: `training.normalize` is { mean, std } per channel (it was [mean, std]). */
export const STANDALONE_VERSION = 2;

/** A wasm module of the bundle: a step built for a thread count, with or without relaxed SIMD; its bytes are in `file`. */
export type ManifestWasmModule = Omit<WasmStep, 'binary'> & { readonly file: string };

/** A WebGPU step: its dispatch plan (JSON, shaders named by file). */
export interface ManifestWgslStep {
  readonly file: string;
  readonly stage: 'train' | 'eval';
  readonly batchSize: number;
}

export interface Manifest {
  readonly format: typeof STANDALONE_FORMAT;
  readonly version: typeof STANDALONE_VERSION;
  /** The model class and the file it was compiled from (for messages). */
  readonly name: string;
  readonly file: string;
  readonly sourceSha256: string;
  readonly kilnVersion: string;
  /** One example's shape, and the number of classes the logits have. */
  readonly input: readonly number[];
  readonly classes: number;
  readonly training: ResolvedTraining & { readonly normalize: Normalize; readonly evalBatchSize: number };
  /** Draws initialisation took from the seed's generator: the data order's draws begin after them. */
  readonly initDraws: number;
  /** The dataset the bundle carries (gzip IDX files), or null: the user supplies one. */
  readonly data: { readonly name: string; readonly trainCount: number; readonly testCount: number; readonly files: Readonly<Record<'trainImages' | 'trainLabels' | 'testImages' | 'testLabels', string>> } | null;
  /** Image counts the steps were compiled for (the short last batches follow from them). */
  readonly counts: { readonly train: number; readonly test: number };
  /**
   * Every persistent tensor: name, kind, shape; model state (parameters, buffers) with its byte
   * offset in params.safetensors' data, optimizer state with the constant it starts at.
   */
  readonly state: readonly { readonly name: string; readonly kind: 'param' | 'buffer' | 'optim'; readonly shape: readonly number[]; readonly offset?: number; readonly init?: number }[];
  readonly params: string;
  /** (stage, batch size) of every step an epoch runs. */
  readonly steps: readonly { readonly stage: 'train' | 'eval'; readonly batchSize: number }[];
  readonly wasm?: { readonly layout: WasmStateLayout; readonly modules: readonly ManifestWasmModule[] };
  readonly webgpu?: { readonly steps: readonly ManifestWgslStep[] };
  /** SHA-256 (hex) of every other file of the bundle, by path relative to it. */
  readonly files: Readonly<Record<string, string>>;
}

const REBUILD = 'rebuild the bundle with `kiln compile MODEL.ts --standalone`';

/** Parses manifest.json and checks its format and version; `where` names it in messages. */
export function parseManifest(text: string, where: string): Manifest {
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(text) as Partial<Manifest>;
  } catch (e) {
    throw new KilnError('bundle', `${where} is not a kiln standalone manifest: it does not parse as JSON (${(e as Error).message})`, undefined, REBUILD);
  }
  if (m === null || typeof m !== 'object' || m.format !== STANDALONE_FORMAT) throw new KilnError('bundle', `${where} is not a kiln standalone manifest: no "format": "${STANDALONE_FORMAT}"`, undefined, REBUILD);
  if (m.version !== STANDALONE_VERSION) {
    throw new KilnError('bundle', `${where} is a version ${String(m.version)} standalone bundle; this runtime reads version ${STANDALONE_VERSION}`, undefined, `${REBUILD} with the kiln that made this runtime`);
  }
  const fields: (keyof Manifest)[] = ['name', 'file', 'input', 'classes', 'training', 'state', 'params', 'steps', 'files', 'counts'];
  const missing = fields.filter((f) => m[f] === undefined);
  if (missing.length) throw new KilnError('bundle', `${where} lacks ${missing.join(', ')}`, undefined, REBUILD);
  return m as Manifest;
}
