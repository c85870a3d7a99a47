import { defineOp, ints, pair } from '../op.ts';
import { fmtShape, numel, windowOut, type Shape } from '../shape.ts';
import type { Attrs } from '../graph.ts';

function pooledShape(name: string, [x]: readonly Shape[], a: Attrs): Shape {
  if (x!.length !== 4) throw new Error(`${name} expects a 4-d input [N, C, H, W], got ${fmtShape(x!)}`);
  const [kh, kw] = pair(a, 'kernel');
  const [sh, sw] = pair(a, 'stride');
  const [ph, pw] = pair(a, 'padding');
  if (2 * ph > kh || 2 * pw > kw) throw new Error(`${name}: padding must be at most half the kernel size`);
  const ho = windowOut(x![2]!, kh, sh, ph);
  const wo = windowOut(x![3]!, kw, sw, pw);
  if (ho < 1 || wo < 1) throw new Error(`${name} window ${kh}x${kw} does not fit input ${fmtShape(x!)}`);
  return [x![0]!, x![1]!, ho, wo];
}

const windowFlops = (_: readonly Shape[], out: Shape, a: Attrs) => {
  const [kh, kw] = pair(a, 'kernel');
  return numel(out) * kh * kw;
};

const poolAttrs = (a: Attrs) => ({ kernel: a.kernel!, stride: a.stride!, padding: a.padding! });

/** Padding counts as -inf, as in PyTorch. */
export const maxPool2d = defineOp({
  name: 'max_pool2d',
  doc: 'max over each window',
  arity: 1,
  shape: (s, a) => pooledShape('max_pool2d', s, a),
  flops: windowFlops,
  // Recomputes the argmax from x instead of storing indices; ties go to the first maximum in
  // row-major window order, as PyTorch's CPU kernel does.
  grad: (b, n, g) => [b.op('max_pool2d_grad', [g, n.inputs[0]!], poolAttrs(n.attrs))],
});

export const maxPool2dGrad = defineOp({
  name: 'max_pool2d_grad',
  doc: 'routes g to the first maximum of each window of x',
  arity: 2,
  shape: ([, x]) => x!,
  flops: ([g], _, a) => windowFlops([], g!, a),
});

/** count_include_pad=True, PyTorch's default: every window divides by kh·kw. */
export const avgPool2d = defineOp({
  name: 'avg_pool2d',
  doc: 'mean over each window (padding counted)',
  arity: 1,
  shape: (s, a) => pooledShape('avg_pool2d', s, a),
  flops: windowFlops,
  grad: (b, n, g) => [b.op('avg_pool2d_grad', [g], { ...poolAttrs(n.attrs), shape: b.node(n.inputs[0]!).shape })],
});

export const avgPool2dGrad = defineOp({
  name: 'avg_pool2d_grad',
  doc: 'spreads g evenly over each window',
  arity: 1,
  shape: (_, a) => ints(a, 'shape'),
  flops: ([g], _, a) => windowFlops([], g!, a),
});

/**
 * Bin i of `out` over an axis of length `size`, PyTorch's adaptive pooling rule: rows
 * floor(i·size/out) to ceil((i+1)·size/out), end exclusive. Bins tile the axis and overlap by one
 * row where out does not divide size.
 */
export function adaptiveBin(i: number, size: number, out: number): readonly [number, number] {
  return [Math.floor((i * size) / out), Math.ceil(((i + 1) * size) / out)];
}

/**
 * torch.nn.AdaptiveAvgPool2d: the mean over each bin (adaptiveBin per axis). With size [1, 1] it
 * is global average pooling.
 */
export const adaptiveAvgPool2d = defineOp({
  name: 'adaptive_avg_pool2d',
  doc: 'mean over each of size[0]×size[1] bins (torch adaptive_avg_pool2d)',
  arity: 1,
  shape: ([x], a) => {
    if (x!.length !== 4) throw new Error(`adaptive_avg_pool2d expects a 4-d input [N, C, H, W], got ${fmtShape(x!)}`);
    const [oh, ow] = pair(a, 'size');
    if (!(oh >= 1 && ow >= 1)) throw new Error(`adaptive_avg_pool2d: output size must be at least 1, got [${oh}, ${ow}]`);
    return [x![0]!, x![1]!, oh, ow];
  },
  // Each input element is read once per bin that holds it: at most twice per axis.
  flops: ([x]) => numel(x!),
  grad: (b, n, g) => [b.op('adaptive_avg_pool2d_grad', [g], { shape: b.node(n.inputs[0]!).shape })],
});

export const adaptiveAvgPool2dGrad = defineOp({
  name: 'adaptive_avg_pool2d_grad',
  doc: "spreads each bin's g evenly over the bin; overlapping bins add",
  arity: 1,
  shape: (_, a) => ints(a, 'shape'),
  flops: (_, out) => numel(out),
});

/** A pooling window: kernel, stride and zero/-inf padding per axis. */
export interface PoolWindow {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
}

/**
 * The window of a max_pool2d / avg_pool2d (or their gradients), or with prefix 'pool' the pooling
 * of a conv_block (attrs poolKernel, poolStride, poolPadding): every backend reads it here.
 */
export function poolWindow(attrs: Attrs, prefix = ''): PoolWindow {
  const key = (k: string) => (prefix ? prefix + k[0]!.toUpperCase() + k.slice(1) : k);
  const [kh, kw] = pair(attrs, key('kernel'));
  const [sh, sw] = pair(attrs, key('stride'));
  const [ph, pw] = pair(attrs, key('padding'));
  return { kh, kw, sh, sw, ph, pw };
}

/** A conv_block's pooling attributes as max_pool2d / avg_pool2d attrs. */
export function convBlockPoolAttrs(a: Attrs): Attrs {
  return { kernel: a.poolKernel!, stride: a.poolStride!, padding: a.poolPadding! };
}
