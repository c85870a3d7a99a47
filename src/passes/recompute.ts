import { KERNEL_KINDS, splitLinearCrossEntropy, type ConvAttrs } from '../ir/kernels.ts';
import { numel, windowOut, type Shape } from '../ir/shape.ts';
import type { Target } from '../ir/target.ts';
import { baseOf, producers, rootValues, type FusedKernel, type KernelGraph } from './kernel-graph.ts';

const bytes = (shape: readonly number[]) => 4 * numel(shape);

/**
 * Store or recompute, for each value backward needs, whichever costs less under the cost model
 * and fits the target's storage-buffer limit. The cost model: one unit per floating-point
 * operation, the target's flopsPerByte units per byte moved through memory (its balance, stated
 * with each backend's target); a stored value costs its write and its read back:
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
export function recomputeOrStore(kg: KernelGraph, target: Pick<Target, 'maxStorageBuffers' | 'flopsPerByte'>): KernelGraph {
  const limit = target.maxStorageBuffers;
  const kernels: (FusedKernel | undefined)[] = [...kg.kernels];
  const prod = producers(kg);
  const shape = (v: number) => kg.values[v]!.shape;
  const fits = (k: Pick<FusedKernel, 'inputs' | 'outputs'>) => new Set([...k.inputs, ...k.outputs].filter((v) => numel(shape(v)) > 1)).size <= limit;
  const roots = rootValues(kg);
  const readers = (v: number) => kernels.flatMap((k, i) => (k && k.inputs.some((u) => baseOf(kg.values, u) === v) ? [i] : []));

  const blockGrad = KERNEL_KINDS.conv_block_grad;
  kernels.forEach((kb, bi) => {
    if (!kb || kb.kind !== 'conv_block_grad') return;
    const { attrs: attrs0, inputs: ins0, outputs } = blockGrad.read(kb);
    let [attrs, ins, ops] = [attrs0, ins0, kb.ops];
    // Fold the linear layer's input gradient in, or keep storing it.
    const gy = ins.gy!;
    const li = prod.get(baseOf(kg.values, gy));
    const l = li === undefined ? undefined : kernels[li];
    // The layer's gradient kernel, or the last layer's, inside its linear_cross_entropy.
    const composed = l?.kind === 'linear_cross_entropy' && l.attrs.backward === true;
    const lv = l?.kind === 'linear_grad' ? KERNEL_KINDS.linear_grad.read(l) : composed ? KERNEL_KINDS.linear_grad.read(splitLinearCrossEntropy(l!, (o) => o).backward) : undefined;
    const dx = lv && !lv.expr ? lv.outputs.results[0] : undefined;
    if (lv && dx !== undefined && dx === baseOf(kg.values, gy) && !roots.has(dx) && readers(dx).every((r) => r === bi)) {
      const { g: g2, x, w: w2 } = lv.inputs;
      const foldFlops = 2 * shape(g2)[1]! * numel(shape(gy));
      const storeCost = 2 * bytes(shape(gy)) * target.flopsPerByte;
      const folded = { attrs: { ...attrs, fold: true }, inputs: { ...ins, gy: undefined, g2, w2 } };
      if (foldFlops < storeCost && fits(blockGrad.build(folded.attrs, folded.inputs, outputs))) {
        const lops = [...l!.ops];
        lops.splice(lops.indexOf('matmul'), 1);
        const { dw, db } = lv.outputs;
        if (composed) {
          const ce = KERNEL_KINDS.linear_cross_entropy.read(l!);
          kernels[li!] = { ops: lops, ...KERNEL_KINDS.linear_cross_entropy.build({ ...ce.attrs, dx: false }, { ...ce.inputs, operands: [] }, { ...ce.outputs, results: [] }) };
        } else kernels[li!] = { ops: lops, ...KERNEL_KINDS.linear_grad.build({ ...lv.attrs, dx: false }, { g: g2, x, operands: [] }, { dw, db, results: [] }) };
        [attrs, ins, ops] = [folded.attrs, folded.inputs, ['matmul', ...ops]];
      }
    }
    // The argmax: keep storing it, or recompute the convolution.
    if (attrs.saved === 'argmax') {
      const fi = prod.get(ins.argmax!)!;
      const f = kernels[fi]!;
      const block = KERNEL_KINDS.conv_block.read(f);
      const { w, b: bias } = block.inputs;
      const a = convOutShape(block.attrs, shape(block.inputs.x), shape(w));
      const convFlops = numel(a) * (2 * shape(w)[1]! * shape(w)[2]! * shape(w)[3]! + (bias === undefined ? 0 : 1) + (attrs.act === 'relu' ? 1 : 0) + 1);
      const storeCost = (2 * bytes(shape(ins.argmax!)) + bytes(shape(ins.y!))) * target.flopsPerByte;
      const recomputed = blockGrad.build({ ...attrs, saved: 'recompute' }, { ...ins, y: undefined, argmax: undefined, w, b: bias }, outputs);
      if (convFlops < storeCost && fits(recomputed)) {
        kernels[fi] = { ops: f.ops, ...KERNEL_KINDS.conv_block.build({ ...block.attrs, argmax: false }, block.inputs, { y: block.outputs.y }) };
        kernels[bi] = { ops, ...recomputed };
        return;
      }
    }
    kernels[bi] = { ops, ...blockGrad.build(attrs, ins, outputs) };
  });
  return { ...kg, kernels: kernels as FusedKernel[] };
}

/** Shape of a conv_block's activation before pooling: the convolution's output. */
function convOutShape(a: ConvAttrs, x: Shape, w: Shape): number[] {
  const [sh, sw] = a.stride;
  const [ph, pw] = a.padding;
  return [x[0]!, w[0]!, windowOut(x[2]!, w[2]!, sh!, ph!), windowOut(x[3]!, w[3]!, sw!, pw!)];
}
