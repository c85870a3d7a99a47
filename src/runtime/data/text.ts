/**
 * Text for language models: a file's bytes are its tokens, so the vocabulary is 256 and a model
 * file does not depend on the text it trains on. The first (1 − valFraction) of the bytes train,
 * the rest are held out for evaluation (nanoGPT's `n = int(0.9 * len(data))` split).
 *
 * A step's x is B windows of T bytes ([B, T], training.input [T]) and its labels the byte after
 * each position ([B·T]), so the model's logits are [B·T, 256] and the loss is PyTorch's
 * `cross_entropy(logits.view(-1, 256), y.view(-1))`.
 *
 * No Node module here (text-file.ts reads the file), so that a page could train on text too.
 */
import { dataError } from './dataset.ts';
import { epochGenerator, type ShuffleSeed } from './shuffle.ts';

/** Bytes: the vocabulary of every text dataset. */
export const TEXT_VOCAB = 256;

/** The held-out share of the bytes when neither --val-fraction nor training.valFraction says. */
export const DEFAULT_VAL_FRACTION = 0.1;

export interface TextDataset {
  readonly kind: 'text';
  /** The file's base name, as the header shows it. */
  readonly name: string;
  /** The file as the user named it, for messages. */
  readonly file: string;
  /** The first (1 − valFraction) of the bytes. */
  readonly train: Uint8Array;
  /** The rest, held out for evaluation. */
  readonly val: Uint8Array;
  /** Bytes per window (T of training.input [T]). */
  readonly context: number;
  readonly valFraction: number;
}

/** Whether a dataset is text (image datasets have no `kind`). */
export function isText(d: object): d is TextDataset {
  return (d as { kind?: unknown }).kind === 'text';
}

/** Bytes in the training split of `n`: floor(n·(1 − F)), as Python's int(n * 0.9). */
function trainBytes(n: number, valFraction: number): number {
  return Math.floor(n * (1 - valFraction));
}

/** The fewest bytes whose two splits each hold a window of `window` bytes. */
function fewestBytes(window: number, valFraction: number): number {
  // Held out: n − floor(n·(1 − F)) < n·F + 1, so fewer than (window − 1)/F bytes never hold a window.
  let n = Math.max(Math.floor((window - 1) / valFraction), Math.ceil(window / (1 - valFraction)));
  while (trainBytes(n, valFraction) < window || n - trainBytes(n, valFraction) < window) n++;
  return n;
}

/** Checks --val-fraction or training.valFraction: a share strictly between 0 and 1. */
export function validValFraction(f: number): boolean {
  return Number.isFinite(f) && f > 0 && f < 1;
}

/**
 * A text dataset from a file's bytes: the split, checked to leave a window of T+1 bytes (T inputs
 * and the byte after the last) on each side. `file` names it in messages.
 */
export function textDataset(bytes: Uint8Array, file: string, name: string, opts: { context: number; valFraction: number }): TextDataset {
  const { context, valFraction } = opts;
  if (!validValFraction(valFraction)) throw dataError(`${file}: the held-out fraction ${valFraction} must be between 0 and 1 (exclusive)`, 'pass --val-fraction 0.1 (the default) or another share of the text to evaluate on');
  if (!(Number.isInteger(context) && context >= 1)) throw dataError(`${file}: a context of ${context} bytes must be a positive integer`, 'set training.input to [T], the bytes the model sees per window, e.g. [64]');
  const n = bytes.length;
  if (n === 0) throw dataError(`${file}: is empty`, 'give a UTF-8 text file to train on');
  const window = context + 1;
  const cut = trainBytes(n, valFraction);
  if (cut < window || n - cut < window) {
    throw dataError(`${file}: ${n.toLocaleString('en-US')} bytes split into ${cut.toLocaleString('en-US')} to train on and ${(n - cut).toLocaleString('en-US')} held out (val fraction ${valFraction}); each part needs a window of ${window} bytes (context ${context} and the byte after it)`,
      `use a text of at least ${fewestBytes(window, valFraction).toLocaleString('en-US')} bytes, a shorter context (training.input), or another --val-fraction`);
  }
  return { kind: 'text', name, file, train: bytes.subarray(0, cut), val: bytes.subarray(cut), context, valFraction };
}

/**
 * Steps per epoch when training.stepsPerEpoch does not say: as many as cover the training bytes
 * once with B windows of T (floor((n − 1)/(B·T)), at least one).
 */
export function defaultStepsPerEpoch(trainLength: number, batchSize: number, context: number): number {
  return Math.max(1, Math.floor((trainLength - 1) / (batchSize * context)));
}

/** Whole windows of T+1 bytes that follow each other in `length` bytes, starting at 0, T, 2T, ... */
export function consecutiveWindows(length: number, context: number): number {
  return Math.floor((length - 1) / context);
}

/**
 * Where each window of an epoch starts: row i of step s is element s·B + i. Shuffled, they are
 * `torch.randint(n − T, (steps·B,), generator=g)` from the generator the epoch's shuffle would
 * use (shuffle.ts), so a PyTorch loop that draws `torch.randint(n − T, (B,), generator=g)` per
 * step (nanoGPT's get_batch) sees the same windows, and a resumed run recomputes them. Without a
 * shuffle seed, consecutive windows from the start, (s·B + i)·T, wrapping to byte 0 once the
 * split holds no further whole window, so each epoch repeats the same pass.
 */
export function epochWindows(trainLength: number, context: number, count: number, epoch: number, shuffle?: ShuffleSeed): Uint32Array {
  const starts = new Uint32Array(count);
  if (shuffle) {
    const g = epochGenerator(epoch, shuffle);
    for (let k = 0; k < count; k++) starts[k] = g.randint(trainLength - context);
  } else {
    const windows = consecutiveWindows(trainLength, context);
    for (let k = 0; k < count; k++) starts[k] = (k % windows) * context;
  }
  return starts;
}

/**
 * Writes windows starts[from .. from+count) of `bytes` into x ([count, T] byte values) and labels
 * (the byte after each position, [count·T]). x and labels may be longer than needed.
 */
export function fillWindows(bytes: Uint8Array, starts: ArrayLike<number>, from: number, count: number, context: number, x: Float32Array, labels: Float32Array): void {
  if (x.length < count * context || labels.length < count * context) throw new RangeError(`fillWindows: ${count} windows of ${context} need x and labels of ${count * context}; got ${x.length} and ${labels.length}`);
  for (let b = 0; b < count; b++) {
    const s = starts[from + b]!;
    if (!(s >= 0 && s + context < bytes.length)) throw new RangeError(`fillWindows: a window at ${s} of ${context + 1} bytes runs past the split's ${bytes.length}`);
    const row = b * context;
    for (let t = 0; t < context; t++) {
      x[row + t] = bytes[s + t]!;
      labels[row + t] = bytes[s + t + 1]!;
    }
  }
}

/** Cross-entropy in nats per byte as bits per byte: the compressed size a model of the text implies. */
export function bitsPerByte(loss: number): number {
  return loss / Math.LN2;
}
