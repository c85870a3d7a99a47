import { MAX_STORAGE_BUFFERS } from '../ir/kernels.ts';
import { numel, windowOut, type Shape } from '../ir/shape.ts';
import { baseOf, producers, rootValues, type FusedKernel, type KernelGraph } from './kernel-graph.ts';

/**
 * The cost model: one unit per floating-point operation, FLOPS_PER_BYTE units per byte moved
 * through memory; a stored value costs its write and its read back. 2 is measured, not the DRAM
 * balance (≈ 8 for a core's f32 SIMD against 10 GB/s): what a step stores for backward is a few
 * MB written and read back within the step, from cache. SimpleCNN's choice, side by side on the
 * wasm backend: storing the max-pool argmax (4.2 MB) instead of recomputing its convolution in
 * the backward kernel (29 MFLOP) makes the whole train step 1.29-1.34× faster (1 and 2 threads),
 * where the old balance of 8 chose to recompute; storing the linear layer's input gradient
 * (2.8 MB) or folding it (6.9 MFLOP) measured even. GPUs (≈ 15 on an H100's HBM) recompute
 * more cheaply still, but there both costs are microseconds against a dispatch.
 */
export const FLOPS_PER_BYTE = 2;

const bytes = (shape: readonly number[]) => 4 * numel(shape);

export interface RecomputeOptions {
  maxStorageBuffers?: number;
}

/**
 * Store or recompute, for each value backward needs, whichever costs less under the cost model
 * and fits the storage-buffer limit:
 * - max-pool argmax (and with it the ReLU mask, which is y > 0 at the argmax): store the argmax
 *   from the forward conv_block (write + read, plus reading y back), or recompute the
 *   convolution in the backward kernel;
 * - a linear layer's input gradient feeding a conv_block_grad: store it, or fold it into the
 *   conv kernel, which forms each element from the K output gradients and weights (2K flops).
 * Two other values backward needs are settled by the op table already, and this model agrees:
 * ReLU masks are read from the ReLU's output (stored anyway as the next layer's input: zero
 * extra bytes), and batch-norm backward recomputes (x - mean)/sqrt(var + eps) from x (2 flops
 * per element against 64 units to store it).
 */
export function recomputeOrStore(kg: KernelGraph, opts: RecomputeOptions = {}): KernelGraph {
  const limit = opts.maxStorageBuffers ?? MAX_STORAGE_BUFFERS;
  const kernels: (FusedKernel | undefined)[] = [...kg.kernels];
  const prod = producers(kg);
  const shape = (v: number) => kg.values[v]!.shape;
  const fits = (k: FusedKernel) => new Set([...k.inputs, ...k.outputs].filter((v) => numel(shape(v)) > 1)).size <= limit;
  const roots = rootValues(kg);
  const readers = (v: number) => kernels.flatMap((k, i) => (k && k.inputs.some((u) => baseOf(kg.values, u) === v) ? [i] : []));

  kernels.forEach((kb, bi) => {
    if (!kb || kb.kind !== 'conv_block_grad') return;
    let b = kb;
    let grad = [b.inputs[0]!];
    let rest = b.inputs.slice(1);
    let attrs = b.attrs;
    // Fold the linear layer's input gradient in, or keep storing it.
    const gy = grad[0]!;
    const li = prod.get(baseOf(kg.values, gy));
    const l = li === undefined ? undefined : kernels[li];
    const dx = l?.outputs[l.outputs.length - 1];
    if (l && l.kind === 'linear_grad' && l.attrs.dx === true && !l.expr && dx === baseOf(kg.values, gy) && !roots.has(dx) && readers(dx).every((r) => r === bi)) {
      const [g2, , w2] = l.inputs as [number, number, number];
      const foldFlops = 2 * shape(g2)[1]! * numel(shape(gy));
      const storeCost = 2 * bytes(shape(gy)) * FLOPS_PER_BYTE;
      const folded: FusedKernel = { ...b, attrs: { ...attrs, fold: true }, inputs: [g2, w2, ...rest] };
      if (foldFlops < storeCost && fits(folded)) {
        const ops = [...l.ops];
        ops.splice(ops.indexOf('matmul'), 1);
        kernels[li!] = { ...l, attrs: { ...l.attrs, dx: false }, ops, inputs: l.inputs.slice(0, 2), outputs: l.outputs.slice(0, -1) };
        grad = [g2, w2];
        attrs = folded.attrs;
        b = { ...b, ops: ['matmul', ...b.ops] };
      }
    }
    // The argmax: keep storing it, or recompute the convolution.
    if (attrs.saved === 'argmax') {
      const [y, idx, x] = rest as [number, number, number];
      const fi = prod.get(idx)!;
      const f = kernels[fi]!;
      const [, w, bias] = f.inputs as [number, number, number | undefined];
      const a = convOutShape(f, shape(f.inputs[0]!), shape(w));
      const convFlops = numel(a) * (2 * shape(w)[1]! * shape(w)[2]! * shape(w)[3]! + (bias === undefined ? 0 : 1) + (attrs.act === 'relu' ? 1 : 0) + 1);
      const storeCost = (2 * bytes(shape(idx)) + bytes(shape(y))) * FLOPS_PER_BYTE;
      const recomputed: FusedKernel = { ...b, attrs: { ...attrs, saved: 'recompute' }, inputs: [...grad, x, w, ...(bias === undefined ? [] : [bias])] };
      if (convFlops < storeCost && fits(recomputed)) {
        kernels[fi] = { ...f, attrs: { ...f.attrs, argmax: false }, outputs: [f.outputs[0]!] };
        kernels[bi] = recomputed;
        return;
      }
    }
    kernels[bi] = { ...b, attrs, inputs: [...grad, ...rest] };
  });
  return { ...kg, kernels: kernels as FusedKernel[] };
}

/** Shape of a conv_block's activation before pooling: the convolution's output. */
function convOutShape(f: FusedKernel, x: Shape, w: Shape): number[] {
  const [sh, sw] = f.attrs.stride as number[];
  const [ph, pw] = f.attrs.padding as number[];
  return [x[0]!, w[0]!, windowOut(x[2]!, w[2]!, sh!, ph!), windowOut(x[3]!, w[3]!, sw!, pw!)];
}
