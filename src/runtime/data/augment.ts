/**
 * Training-set augmentation as torchvision's CIFAR recipe writes it,
 * `Compose([RandomCrop(size, padding), RandomHorizontalFlip(p), ToTensor(), Normalize(...)])`:
 * the crop and the flip act on the 8-bit image before normalisation, so the padding is pixels of
 * value 0 (normalised to -mean/std), the crop's top and left offsets are uniform in
 * [0, 2·padding], and the flip happens with probability p after the crop.
 *
 * The draws are not PyTorch's (its transforms draw from the global generator in sample-fetch
 * order, which would also shift every later epoch's shuffle): each image's three draws are
 * counter-based (src/ir/rng.ts), a pure function of (seed, epoch, image index), so a run resumed
 * mid-epoch sees the same batches, and nothing random needs checkpointing.
 *
 * This module imports no Node module: the standalone runtime augments with it too.
 */
import { KilnError } from '../../ir/errors.ts';
import { JS_U32, randomBits, Stream, streamKey } from '../../ir/rng.ts';

export interface Augment {
  /** torchvision's RandomCrop(size, padding): the images' own size, padded with zeros on every side. */
  readonly randomCrop?: { readonly size: number; readonly padding: number };
  /** torchvision's RandomHorizontalFlip(p): the probability of a flip. */
  readonly horizontalFlip?: number;
}

const DRAWS_PER_IMAGE = 3;

/** One epoch's augmentation: made once per epoch, so that filling a batch allocates nothing. */
export interface EpochAugment {
  readonly augment: Augment;
  /** [channels, rows, cols] of every image. */
  readonly shape: readonly [number, number, number];
  /** The epoch's rng.ts stream key. */
  readonly key: number;
  /** ceil(p·2^24): a flip happens when the draw's 24 high bits fall below it (torch.rand(1) < p). */
  readonly flipBelow: number;
}

export function epochAugment(augment: Augment, shape: readonly [number, number, number], seed: number, epoch: number): EpochAugment {
  return {
    augment,
    shape,
    key: streamKey(JS_U32, seed >>> 0, Stream.AUGMENT, epoch >>> 0),
    flipBelow: Math.ceil((augment.horizontalFlip ?? 0) * 2 ** 24),
  };
}

/** Uniform integer in [0, n) from 32 random bits (bias under n / 2^32). */
const below = (bits: number, n: number) => Math.floor((bits * n) / 2 ** 32);

/** What one image's augmentation drew: the crop's top-left corner in the padded image, and the flip. */
export interface ImageDraw {
  top: number;
  left: number;
  flip: boolean;
}

/** Image `index`'s draws in the epoch, written into `into` (fillBatch reuses one, so a batch allocates nothing). */
export function drawImage(aug: EpochAugment, index: number, into: ImageDraw): ImageDraw {
  const first = index * DRAWS_PER_IMAGE;
  const span = 2 * (aug.augment.randomCrop?.padding ?? 0) + 1;
  into.top = span > 1 ? below(randomBits(JS_U32, aug.key, first >>> 0), span) : 0;
  into.left = span > 1 ? below(randomBits(JS_U32, aug.key, (first + 1) >>> 0), span) : 0;
  into.flip = randomBits(JS_U32, aug.key, (first + 2) >>> 0) >>> 8 < aug.flipBelow;
  return into;
}

/**
 * Writes a channels x rows x cols image (its pixels start at `src` in `images`) to `out` from
 * `dst`, each 8-bit pixel through `table` (256 normalised values per channel, or 256 for every
 * channel), padded by `pad` zero pixels on every side, cropped to its own size at `d`'s corner and
 * flipped if `d` says so. With pad 0 and no flip it is copied as it is.
 */
export function writeImage(images: Uint8Array, src: number, out: Float32Array, dst: number, table: Float32Array, channels: number, rows: number, cols: number, pad: number, d: Readonly<ImageDraw>): void {
  const { top, left, flip } = d;
  const perTable = table.length === 256 ? 0 : 256;
  // Output column x reads source column x - shift (cols-1-x + left-pad when flipped); the
  // columns whose source lies outside the image are padding.
  const shift = flip ? left - pad : pad - left;
  const lo = Math.max(0, shift);
  const hi = Math.min(cols, shift + cols);
  for (let c = 0; c < channels; c++) {
    const t = c * perTable;
    const zero = table[t]!;
    for (let y = 0; y < rows; y++) {
      const o = dst + (c * rows + y) * cols;
      const sy = y + top - pad;
      if (sy < 0 || sy >= rows) {
        out.fill(zero, o, o + cols);
        continue;
      }
      const row = src + (c * rows + sy) * cols;
      if (lo > 0) out.fill(zero, o, o + lo);
      if (hi < cols) out.fill(zero, o + hi, o + cols);
      if (flip) {
        const base = row + cols - 1 + left - pad;
        for (let x = lo; x < hi; x++) out[o + x] = table[t + images[base - x]!]!;
      } else {
        const base = row + left - pad;
        for (let x = lo; x < hi; x++) out[o + x] = table[t + images[base + x]!]!;
      }
    }
  }
}

/**
 * Fails unless `augment` applies to images of `shape` (`dataset` names them). Evaluation images are
 * never cropped, so a crop to another size would train the model on a shape it is not tested on.
 */
export function checkAugment(augment: Augment | undefined, shape: readonly [number, number, number], dataset: string): void {
  const crop = augment?.randomCrop;
  if (!crop || (crop.size === shape[1] && crop.size === shape[2])) return;
  throw new KilnError('data', `randomCrop size ${crop.size} crops ${crop.size}x${crop.size} images, but ${dataset}'s are ${shape[1]}x${shape[2]}, and test images are never cropped`,
    undefined, shape[1] === shape[2] ? `crop to the images' own size and pad them, as CIFAR's recipe RandomCrop(32, padding=4) does: size ${shape[1]}` : 'random crops need square images');
}
