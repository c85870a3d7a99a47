import type { ConvImage } from './conv.ts';
import type { Emitter, Fn, Local, X } from './emitter.ts';
import { winogradFits, winogradImage, winogradScratchBytes, winogradWeightBytes, winogradWeights } from './winograd.ts';
import { winograd4Fits, winograd4Image, winograd4Images, winograd4ScratchBytes, winograd4WeightBytes, winograd4Weights } from './winograd-f4.ts';

/** How a Winograd convolution of one shape runs: its transformed weights, scratch and the two emitters. */
export interface WinogradPlan {
  /** Bytes of the transformed weights. */
  weightBytes: number;
  /** Bytes of the per-thread working buffers. */
  scratchBytes: number;
  /** Transforms the weights into u (see winogradWeights). */
  weights(e: Emitter, fn: Fn, u: X, at: (o: X, c: X, kh: number, kw: number) => X): X[];
  /** Consecutive images a call takes (the last call of a batch may take fewer). */
  images: number;
  /** `count` ≤ images consecutive images, x's and out's one after another (see winogradImage). */
  image(e: Emitter, fn: Fn, u: X, x: Local, out: Local, s: X, count: number): X[];
}

/**
 * F(4×4, 3×3) where the image's sides are multiples of 8, else F(2×2, 3×3) where it fits; none
 * otherwise. F(4×4) does 36 products per 16 outputs against F(2×2)'s 64 at about the same
 * transform cost per output: 1.1-1.4× faster on ResNet-20's layers (BENCHMARKS.md).
 */
export function winogradPlan(p: ConvImage): WinogradPlan | undefined {
  if (winograd4Fits(p)) {
    return {
      weightBytes: winograd4WeightBytes(p.O, p.C),
      scratchBytes: winograd4ScratchBytes(p.C),
      weights: (e, fn, u, at) => winograd4Weights(e, fn, u, p.O, p.C, at),
      images: winograd4Images(p),
      image: (e, fn, u, x, out, s, count) => winograd4Image(e, fn, p, u, x, out, s, count),
    };
  }
  if (!winogradFits(p)) return undefined;
  return {
    weightBytes: winogradWeightBytes(p.O, p.C),
    scratchBytes: winogradScratchBytes(p.C),
    weights: (e, fn, u, at) => winogradWeights(e, fn, u, p.O, p.C, at),
    images: 1,
    image: (e, fn, u, x, out, s) => winogradImage(e, fn, p, u, x, out, s),
  };
}
