import { elementwiseOf } from './elementwise.ts';
import type { Kernel } from './program.ts';
import { numel } from './shape.ts';

/**
 * The kernel kinds of a Program beyond the op table: what each reads, writes and computes. This
 * table is the contract for every backend; the fusion pass (src/passes/fuse.ts) only emits what
 * is written here, and the reference backend (src/runtime/reference/fused.ts) implements exactly
 * this, by composing the op table's reference kernels.
 *
 * Conventions shared by all kinds:
 * - Shapes are the slices' shapes; "[N, I]" names dimensions for the formulas.
 * - Inputs and outputs marked "(if attr)" are present only when that attr is true; the others
 *   keep their order.
 * - Values are f32. The reference backend rounds every op's result to f32 where the op-by-op
 *   graph would store it, so a fused kernel there computes exactly what the graph computes;
 *   other backends match it to rounding (their sums may run in another order).
 *
 * Elementwise expressions (`Kernel.expr`) are programs over the primitives of src/ir/expr.ts,
 * evaluated at each element of the kernel's domain; the fusion pass builds them by inlining the
 * templates of the elementwise ops (src/ir/elementwise.ts). An `acc` step is the value the kind
 * computed at the element (its epilogue input); `expr.outputs` lists the steps the kernel writes
 * after its fixed outputs.
 */
export interface KernelKind {
  readonly kind: string;
  readonly doc: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** What `expr` is, when the kind takes one. */
  readonly expr?: string;
}

const pool = {
  pool: "'max' | 'avg' | 'none'",
  poolKernel: '[kh, kw] (pool ≠ none)',
  poolStride: '[sh, sw] (pool ≠ none)',
  poolPadding: '[ph, pw] (pool ≠ none)',
};

const conv = {
  stride: '[sh, sw] of the convolution',
  padding: '[ph, pw] of the convolution (zeros)',
  bias: 'boolean: the convolution has a bias',
  act: "'relu' | 'none': applied to the convolution's output before pooling",
  ...pool,
};

export const KERNEL_KINDS: Readonly<Record<string, KernelKind>> = {
  copy: {
    kind: 'copy',
    doc: 'dst = src: writes a persistent tensor whose new value could not be computed in place',
    attrs: {},
    inputs: ['src'],
    outputs: ['dst (same bytes as src)'],
  },

  elementwise: {
    kind: 'elementwise',
    doc: 'a chain of elementwise ops; the domain is the shape of the outputs (all equal)',
    attrs: {},
    inputs: ['operands, read as the steps say'],
    outputs: ['one per expr.outputs, domain-shaped'],
    expr: 'the chain; no acc',
  },

  foreach: {
    kind: 'foreach',
    doc:
      'one elementwise expression applied to several groups of same-shaped tensors (the optimizer ' +
      'update of many parameters in one launch); group t is computed exactly as an `elementwise` ' +
      'kernel over its own tensors',
    attrs: { groups: 'T, number of groups', groupInputs: 'A, inputs per group', groupOutputs: 'B, outputs per group' },
    inputs: ['group 0 inputs (A), group 1 inputs (A), ..., then shared inputs (scalars such as step)'],
    outputs: ['group 0 outputs (B), group 1 outputs (B), ...'],
    expr: "the per-group chain: { input: k } is the group's input k when k < A, else shared input k - A; no acc",
  },

  linear_ew: {
    kind: 'linear_ew',
    doc: 'acc = x·wᵀ + b (torch.nn.Linear), then an elementwise epilogue over [N, O]',
    attrs: { bias: 'boolean' },
    inputs: ['x [N, I]', 'w [O, I]', 'b [O] (if bias)', 'epilogue operands'],
    outputs: ['one per expr.outputs, [N, O]'],
    expr: 'the epilogue; acc is the linear output at the element',
  },

  linear_grad: {
    kind: 'linear_grad',
    doc: "the backward of torch.nn.Linear from g = dL/dy: dw = gᵀ·x, db = Σ_n g, dx = g·w (then an epilogue)",
    attrs: { bias: 'boolean: write db', dx: 'boolean: compute dx' },
    inputs: ['g [N, O]', 'x [N, I]', 'w [O, I] (if dx)', 'epilogue operands'],
    outputs: ['dw [O, I]', 'db [O] (if bias)', 'dx [N, I] (if dx and no expr), or one per expr.outputs [N, I]'],
    expr: 'optional, only with dx: the epilogue on dx (acc = dx at the element), e.g. the previous layer\'s ReLU mask',
  },

  softmax_cross_entropy: {
    kind: 'softmax_cross_entropy',
    doc:
      'torch.nn.CrossEntropyLoss (mean) and, in the same pass, its gradient: ' +
      'loss = mean_n (logsumexp(logits[n]) - logits[n, label[n]]); dlogits = gradScale·(softmax(logits) - onehot(labels))/N',
    attrs: { grad: 'boolean: write dlogits', gradScale: 'dL/dloss (1 for a training step)' },
    inputs: ['logits [N, K]', 'labels [N] (class indices as f32)'],
    outputs: ['loss []', 'dlogits [N, K] (if grad)'],
  },

  linear_cross_entropy: {
    kind: 'linear_cross_entropy',
    doc: 'logits = x·wᵀ + b, then softmax_cross_entropy on them; the logits are written too (an output of the step)',
    attrs: { bias: 'boolean', grad: 'boolean: write dlogits', gradScale: 'dL/dloss' },
    inputs: ['x [N, I]', 'w [K, I]', 'b [K] (if bias)', 'labels [N]'],
    outputs: ['logits [N, K]', 'loss []', 'dlogits [N, K] (if grad)'],
  },

  conv_block: {
    kind: 'conv_block',
    doc:
      'c = conv2d(x, w) + b (NCHW, OIHW, zero padding, as torch); a = relu(c) or c; y = pool(a): max ' +
      '(padding is -inf) or avg (count_include_pad) or none. Only y is written (and argmax): c and a ' +
      'never reach memory',
    attrs: { ...conv, argmax: 'boolean: also write the argmax of each max-pool window' },
    inputs: ['x [N, C, H, W]', 'w [O, C, KH, KW]', 'b [O] (if bias)'],
    outputs: [
      'y [N, O, PH, PW] (pooled; [N, O, HO, WO] when pool = none)',
      'argmax [N, O, PH, PW] (if argmax): position ih·WO + iw of the window maximum in its plane of a; ties go to the first maximum in row-major window order, NaN wins (PyTorch CPU)',
    ],
  },

  conv_block_grad: {
    kind: 'conv_block_grad',
    doc:
      'the backward of a conv_block from gy = dL/dy: ga = pool backward of gy (max: all of a window\'s ' +
      'gradient to its argmax, overlapping windows add; avg: gy/(kh·kw) to each window position); ' +
      'gc = ga where a > 0, else 0 (act = relu) or ga; dw = Σ gc·x over the windows (conv2d_grad_weight), ' +
      'db = Σ_{n,h,w} gc, dx = the transposed convolution of gc with w (conv2d_grad_input)',
    attrs: {
      ...conv,
      saved:
        "how the argmax and ReLU mask are known: 'none' (neither needed: act none, pool avg or none); " +
        "'output' (pool none, act relu: mask = y > 0); 'argmax' (pool max: routes by the argmax input, mask = y > 0 at the argmax, " +
        "since y is the window's maximum of a); 'recompute' (recomputes c from x, w, b)",
      fold: 'boolean: gy is not stored but computed as g2·w2 (the next linear layer\'s input gradient), viewed as y\'s shape',
      dx: 'boolean: write dx',
    },
    inputs: [
      "gy [y's shape] (if not fold), or g2 [N, K] and w2 [K, O·PH·PW] (if fold)",
      "y (saved = 'output' or 'argmax')",
      "argmax (saved = 'argmax')",
      'x [N, C, H, W]',
      "w [O, C, KH, KW] (if dx or saved = 'recompute')",
      "b [O] (if saved = 'recompute' and bias)",
    ],
    outputs: ['dw [O, C, KH, KW]', 'db [O] (if bias)', 'dx [N, C, H, W] (if dx)'],
  },
};

/**
 * Whether output `o` of a kernel may share the slice of its input `i`: each element is read before
 * it is written and no other element reads it. Holds for plain elementwise op kinds, `copy`,
 * `elementwise` kernels, and `foreach` kernels within one group.
 */
export function inPlaceAllowed(k: Pick<Kernel, 'kind' | 'attrs' | 'inputs' | 'outputs'>, i: number, o: number): boolean {
  const input = k.inputs[i];
  const output = k.outputs[o];
  if (!input || !output || input.bytes !== output.bytes || numel(input.shape) !== numel(output.shape)) return false;
  if (k.kind === 'foreach') {
    const a = k.attrs.groupInputs as number;
    const b = k.attrs.groupOutputs as number;
    return i < a * (k.attrs.groups as number) && Math.floor(i / a) === Math.floor(o / b);
  }
  return k.kind === 'elementwise' || k.kind === 'copy' || elementwiseOf(k.kind, k.attrs) !== undefined;
}

/**
 * WebGPU's limit on storage buffers per shader stage in compatibility mode. The fusion pass
 * splits kernels to respect it; one-element slices (the step counter, scalar constants) do not
 * count, because a backend binds those as uniforms.
 */
export const MAX_STORAGE_BUFFERS = 8;

/** Storage buffers a kernel binds: its distinct non-scalar slices (an in-place pair binds once). */
export function storageBuffers(k: Pick<Kernel, 'inputs' | 'outputs'>): number {
  const seen = new Set<string>();
  for (const s of [...k.inputs, ...k.outputs]) if (numel(s.shape) > 1) seen.add(`${s.offset}:${s.bytes}`);
  return seen.size;
}
