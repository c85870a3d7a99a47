/**
 * Checkpoints and weights as safetensors bytes. No Node module here, so that a browser page can
 * save and resume a run; checkpoint-file.ts reads and writes files.
 */
import { KilnError } from '../ir/errors.ts';
import type { Backend } from './backend.ts';
import { checkAgainst, decodeSafetensors, encodeSafetensors, type Tensor } from './safetensors.ts';

/** Where a run stands: the next step to run, and its place in the data order. */
export interface TrainPosition {
  step: number;
  epoch: number;
  /** Index of the next batch within `epoch`. */
  batch: number;
  /**
   * Mid-epoch: the epoch's sums so far (loss × examples, examples, correct predictions: per position for text), so that a
   * resumed run's epoch line reports the whole epoch, as the uninterrupted run would.
   */
  epochStats?: { lossSum: number; seen: number; correct: number };
}

/** What must agree between a checkpoint and the run resuming from it for the result to be exact. */
export interface RunIdentity {
  model: string;
  seed: number;
  shuffle: boolean;
  batchSize: number;
  trainCount: number;
  optimizer: string;
  /** The training set's augmentation as JSON, or 'none': its draws shape every batch. */
  augment: string;
  /** Text only (trainCount is then its training bytes): the window length and the steps per epoch. */
  context?: number;
  stepsPerEpoch?: number;
}

/** RunIdentity's `augment` of a run with this augmentation. */
export function augmentIdentity(augment: object | undefined): string {
  return augment ? JSON.stringify(augment) : 'none';
}

const META_KEY = 'kiln.checkpoint';
/** Version 2: epoch orders follow PyTorch's generator; a version-1 run's remaining batches would differ. */
const VERSION = 2;

/**
 * A checkpoint holds every persistent tensor (parameters, buffers, optimizer state) and the
 * position. The RNG needs no state of its own: dropout masks and epoch orders are functions of
 * (seed, step, epoch) and the model, which the position and identity pin down.
 */
export function checkpointBytes(backend: Backend, position: TrainPosition, identity: RunIdentity): Uint8Array {
  return encodeSafetensors(snapshot(backend, [...backend.stateShapes.keys()]), { [META_KEY]: JSON.stringify({ version: VERSION, ...position, ...identity }) });
}

/** Restores a checkpoint's bytes into the backend and returns where the run resumes; `file` names them in messages. */
export function restoreCheckpoint(bytes: Uint8Array, file: string, backend: Backend, identity: RunIdentity): TrainPosition {
  const st = decodeSafetensors(bytes, file);
  const raw = st.metadata[META_KEY];
  if (!raw) throw new KilnError('checkpoint', `${file} is not a kiln checkpoint (no '${META_KEY}' metadata)`, undefined, 'resume from a file written by --checkpoint; use --init for plain weights');
  const meta = parseMeta(raw, file);
  if (meta.version !== VERSION) throw new KilnError('checkpoint', `${file} is a version ${meta.version} checkpoint; this kiln resumes version ${VERSION}, whose data order differs`, undefined, 'start the run again: resuming it would not continue the same run');
  // The optimizer and augmentation are JSON already: shown as they are, not quoted again.
  const show = (k: keyof RunIdentity, v: unknown) => ((k === 'optimizer' || k === 'augment') && typeof v === 'string' ? v : JSON.stringify(v));
  const diffs = (Object.keys(identity) as (keyof RunIdentity)[]).filter((k) => meta[k] !== identity[k]).map((k) => `${k}: checkpoint has ${show(k, meta[k])}, this run has ${show(k, identity[k])}`);
  if (diffs.length) throw new KilnError('checkpoint', `${file} was written by a different run:\n  ${diffs.join('\n  ')}`, undefined, 'resume with the same model, data and options as the run that wrote the checkpoint');
  restore(file, st.tensors, backend, [...backend.stateShapes.keys()]);
  return { step: meta.step, epoch: meta.epoch, batch: meta.batch, ...(meta.epochStats ? { epochStats: meta.epochStats } : {}) };
}

/**
 * The checkpoint's metadata: JSON with a version and a position of non-negative integers. A
 * damaged one is the file's problem, named as such (it was a SyntaxError reported as a kiln bug,
 * and a position of -5 resumed as if it were one).
 */
function parseMeta(raw: string, file: string): TrainPosition & RunIdentity & { version: number } {
  const bad = (what: string): never => {
    throw new KilnError('checkpoint', `${file}: its '${META_KEY}' metadata ${what}`, undefined, 'the checkpoint is damaged; resume from another one, or start the run again');
  };
  let meta: unknown;
  try {
    meta = JSON.parse(raw);
  } catch (e) {
    return bad(`is not valid JSON (${(e as Error).message})`);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return bad('is not a JSON object');
  const m = meta as Record<string, unknown>;
  for (const k of ['version', 'step', 'epoch', 'batch'] as const) {
    if (!Number.isSafeInteger(m[k]) || (m[k] as number) < 0) bad(`has ${k} ${JSON.stringify(m[k])}, not a non-negative integer`);
  }
  // Written before kiln augmented: such a run had no augmentation.
  m.augment ??= 'none';
  return m as unknown as TrainPosition & RunIdentity & { version: number };
}

/** Model weights only (parameters and buffers): a PyTorch state_dict as safetensors. */
export function weightsBytes(backend: Backend, names: readonly string[]): Uint8Array {
  return encodeSafetensors(snapshot(backend, names), { format: 'pt' });
}

/** Loads a state_dict (kiln's or PyTorch's) into the backend; names and shapes must match exactly. */
/** The model's weights from a weights file, or from a checkpoint (whose optimizer state is left aside). */
export function restoreWeights(bytes: Uint8Array, file: string, backend: Backend, names: readonly string[]): void {
  const st = decodeSafetensors(bytes, file);
  const tensors = st.metadata[META_KEY] ? Object.fromEntries(Object.entries(st.tensors).filter(([n]) => names.includes(n))) : st.tensors;
  restore(file, tensors, backend, names);
}

function snapshot(backend: Backend, names: readonly string[]): Record<string, Tensor> {
  return Object.fromEntries(names.map((n) => [n, { shape: [...backend.stateShapes.get(n)!], data: backend.getState(n) }]));
}

function restore(file: string, tensors: Record<string, Tensor>, backend: Backend, names: readonly string[]): void {
  checkAgainst(file, tensors, names.map((name) => ({ name, shape: backend.stateShapes.get(name)! })));
  for (const n of names) backend.setState(n, tensors[n]!.data);
}
