import { describe, expect, it } from 'vitest';
import { checkAugment, drawImage, epochAugment, writeImage, type ImageDraw } from '../../../src/runtime/data/augment.ts';
import { fillBatch, normalizeTable } from '../../../src/runtime/data/dataset.ts';
import { thrown } from '../helpers.ts';

/** A table that tells pixels apart from padding: pixel p becomes 100 + p, so padding (pixel 0) is 100. */
const TABLE = Float32Array.from({ length: 256 }, (_, p) => 100 + p);
/** A 3x3 image, 1..9 row by row. */
const IMAGE = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);

function write(pad: number, d: ImageDraw, shape: [number, number, number] = [1, 3, 3], image: Uint8Array = IMAGE, table: Float32Array = TABLE): number[] {
  const out = new Float32Array(shape[0] * shape[1] * shape[2]);
  writeImage(image, 0, out, 0, table, ...shape, pad, d);
  return Array.from(out);
}

describe('RandomCrop and RandomHorizontalFlip on the host', () => {
  it('crops the zero-padded image at the drawn corner, then flips it (torchvision\'s order), by hand', () => {
    // Padded by 1 the image is 5x5; the crop at (top 0, left 2) takes padded rows 0-2 and columns
    // 2-4, i.e. [pad pad pad / 2 3 pad / 5 6 pad]; flipped: [pad pad pad / pad 3 2 / pad 6 5].
    expect(write(1, { top: 0, left: 2, flip: false })).toEqual([100, 100, 100, 102, 103, 100, 105, 106, 100]);
    expect(write(1, { top: 0, left: 2, flip: true })).toEqual([100, 100, 100, 100, 103, 102, 100, 106, 105]);
    // The centre crop is the image itself; a flip alone mirrors each row.
    expect(write(1, { top: 1, left: 1, flip: false })).toEqual([101, 102, 103, 104, 105, 106, 107, 108, 109]);
    expect(write(0, { top: 0, left: 0, flip: true })).toEqual([103, 102, 101, 106, 105, 104, 109, 108, 107]);
    // Bottom-left corner of a padding of 2: rows 4-6 of the 7x7 padded image (image row 2, then
    // padding), columns 0-2 (two of padding, then image column 0).
    expect(write(2, { top: 4, left: 0, flip: false })).toEqual([100, 100, 107, 100, 100, 100, 100, 100, 100]);
  });

  it('applies the same corner and flip to every channel, each through its own table', () => {
    const image = Uint8Array.from({ length: 8 }, (_, i) => i + 1); // 2 channels of 2x2: [1 2 / 3 4], [5 6 / 7 8]
    const table = Float32Array.from({ length: 512 }, (_, i) => (i < 256 ? i : 1000 + i - 256));
    // Crop at (1, 0) of the 4x4 padded planes: [pad 1 / pad 3] and [pad 5 / pad 7]; then flipped.
    expect(write(1, { top: 1, left: 0, flip: true }, [2, 2, 2], image, table)).toEqual([1, 0, 3, 0, 1005, 1000, 1007, 1000]);
    // Crop at top 0: the first row is padding, channel 0's zero (0) and channel 1's (1000).
    expect(write(1, { top: 0, left: 1, flip: false }, [2, 2, 2], image, table)).toEqual([0, 0, 1, 2, 1000, 1000, 1005, 1006]);
  });

  it('pads with pixel 0 before normalisation: the padding is -mean/std of its channel', () => {
    const normalize = { mean: [0.5, 0.25], std: [0.25, 0.5] };
    const split = { images: new Uint8Array(2 * 2 * 2).fill(255), labels: Uint8Array.from([3]), count: 1 };
    const aug = epochAugment({ randomCrop: { size: 2, padding: 2 } }, [2, 2, 2], 0, 0);
    const x = new Float32Array(8);
    fillBatch(split, [0], 0, 1, x, new Float32Array(1), normalize, aug);
    const d = drawImage(aug, 0, { top: 0, left: 0, flip: false });
    const table = normalizeTable(normalize);
    expect(Array.from(x)).toEqual(write(2, d, [2, 2, 2], split.images, table));
    expect(table[0]).toBe(Math.fround(-0.5 / 0.25));
    expect(table[256]).toBe(Math.fround(-0.25 / 0.5));
    expect(table[255]).toBe(Math.fround(Math.fround(1 - 0.5) / Math.fround(0.25)));
  });

  it('draws corners uniformly in [0, 2·padding] and flips with probability p, from (seed, epoch, image) alone', () => {
    const aug = epochAugment({ randomCrop: { size: 32, padding: 4 }, horizontalFlip: 0.3 }, [3, 32, 32], 5, 2);
    const n = 18000;
    const tops = new Array<number>(9).fill(0);
    const lefts = new Array<number>(9).fill(0);
    let flips = 0;
    const d: ImageDraw = { top: 0, left: 0, flip: false };
    for (let i = 0; i < n; i++) {
      drawImage(aug, i, d);
      tops[d.top]!++;
      lefts[d.left]!++;
      if (d.flip) flips++;
    }
    // Each of 9 offsets has mean 2000 and sd ~42: 2000 ± 200 is ~5 sd.
    for (const c of [...tops, ...lefts]) expect(Math.abs(c - n / 9)).toBeLessThan(200);
    expect(Math.abs(flips / n - 0.3)).toBeLessThan(0.02);
    // A draw depends on nothing but (seed, epoch, image): the same again, in any order.
    const again = epochAugment({ randomCrop: { size: 32, padding: 4 }, horizontalFlip: 0.3 }, [3, 32, 32], 5, 2);
    for (const i of [17, 3, 17999, 0]) expect(drawImage(again, i, { top: 0, left: 0, flip: false })).toEqual(drawImage(aug, i, { top: 0, left: 0, flip: false }));
    // Another epoch or seed draws otherwise.
    const seq = (a: typeof aug) => Array.from({ length: 50 }, (_, i) => JSON.stringify(drawImage(a, i, { top: 0, left: 0, flip: false })));
    expect(seq(epochAugment(aug.augment, aug.shape, 5, 3))).not.toEqual(seq(aug));
    expect(seq(epochAugment(aug.augment, aug.shape, 6, 2))).not.toEqual(seq(aug));
  });

  it('p 0 never flips, p 1 always; no padding never moves the image', () => {
    const never = epochAugment({ horizontalFlip: 0 }, [1, 3, 3], 1, 0);
    const always = epochAugment({ randomCrop: { size: 3, padding: 0 }, horizontalFlip: 1 }, [1, 3, 3], 1, 0);
    for (let i = 0; i < 200; i++) {
      expect(drawImage(never, i, { top: 9, left: 9, flip: true })).toEqual({ top: 0, left: 0, flip: false });
      expect(drawImage(always, i, { top: 9, left: 9, flip: false })).toEqual({ top: 0, left: 0, flip: true });
    }
  });

  it('refuses a crop to a size other than the images\'', () => {
    expect(checkAugment({ randomCrop: { size: 32, padding: 4 } }, [3, 32, 32], 'cifar')).toBeUndefined();
    expect(checkAugment({ horizontalFlip: 0.5 }, [1, 28, 28], 'mnist')).toBeUndefined();
    const e = thrown(() => checkAugment({ randomCrop: { size: 24, padding: 4 } }, [3, 32, 32], 'cifar'));
    expect(e.message).toBe("randomCrop size 24 crops 24x24 images, but cifar's are 32x32, and test images are never cropped");
    expect(e.hint).toBe("crop to the images' own size and pad them, as CIFAR's recipe RandomCrop(32, padding=4) does: size 32");
  });
});
