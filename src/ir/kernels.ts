import { elementwiseOf } from './elementwise.ts';
import { pickOutputs } from './expr.ts';
import { attr, defineKind, kindTable, role, type AttrSpec, type AttrsOf, type Built, type KernelLike } from './kernel-kind.ts';
import { isStepSlice, type Expr, type Kernel, type Program, type Slice } from './program.ts';
import { numel, type Shape } from './shape.ts';

/**
 * The kernel kinds of a Program beyond the op table: what each reads, writes and computes. This
 * table is the contract for every backend; the passes build kernels of these kinds and the
 * backends read them only through it (`build` and `read`, src/ir/kernel-kind.ts), and the
 * reference backend (src/runtime/reference/fused.ts) implements exactly this, by composing the
 * op table's reference kernels.
 *
 * Conventions shared by all kinds:
 * - Shapes are the slices' shapes; "[N, I]" names dimensions for the formulas.
 * - A kernel lists its inputs and outputs in the order of the roles below; an optional role
 *   (`maybe`) is left out where its condition on the attrs does not hold.
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
const pool = {
  pool: attr.oneOf(['max', 'avg', 'none'], 'the pooling of the activation'),
  poolKernel: attr.optional(attr.pair('[kh, kw] (pool ≠ none)')),
  poolStride: attr.optional(attr.pair('[sh, sw] (pool ≠ none)')),
  poolPadding: attr.optional(attr.pair('[ph, pw] (pool ≠ none)')),
};

const conv = {
  stride: attr.pair('[sh, sw] of the convolution'),
  padding: attr.pair('[ph, pw] of the convolution (zeros)'),
  bias: attr.flag('the convolution has a bias'),
  act: attr.oneOf(['relu', 'none'], "applied to the convolution's output before pooling"),
  ...pool,
};

/** The attrs a conv_block and its backward share: the convolution, activation and pooling. */
export type ConvAttrs = AttrsOf<typeof conv>;

/**
 * Dropout on attention's weights p, as the `dropout` op computes it over p's [..., T, S] domain:
 * element (l, i, j) is kept iff rng(Stream.DROPOUT + stream, step) at flat index (l·T + i)·S + j is
 * ≥ ceil(p·2^24), then scaled by 1/(1-p).
 */
const attentionDropout = {
  dropout: attr.flag('dropout on the attention weights (training with dropoutP > 0)'),
  p: attr.optional(attr.number('the dropout probability (dropout)')),
  stream: attr.optional(attr.int("the dropout op's site, whose rng stream is Stream.DROPOUT + it (dropout)")),
};

/**
 * Where attention's operands may be read (or y written) in place, so that the model's split of a
 * fused qkv projection into heads (slice, reshape, permute) and the merge of heads back (permute,
 * reshape) need no copies: `<operand>View` = [B, H, T, D, off, sB, sH, sT] says the operand is the
 * [B, H, T, D] tensor whose element (b, h, t, d) is element off + b·sB + h·sH + t·sT + d of its
 * slice. Without one, the operand is its slice, contiguous.
 */
function headViews<const N extends string>(...names: N[]) {
  const doc = '[B, H, T, D, off, sB, sH, sT]: the operand read (written) through this view of its slice';
  return Object.fromEntries(names.map((n) => [`${n}View`, attr.optional(attr.ints(doc))])) as { [K in `${N}View`]: AttrSpec<readonly number[] | undefined> };
}

/** An operand of attention as its kernel reads it: rows of D elements, row (l, t) at `row(l, t)` of the slice. */
export interface HeadView {
  /** The logical shape [..., T, D] (or [B, H, T, D] through a view). */
  readonly shape: Shape;
  /** Heads per leading index: l = b·H + h. */
  readonly H: number;
  readonly off: number;
  readonly sB: number;
  readonly sH: number;
  /** Elements between consecutive rows t. */
  readonly sT: number;
}

/** The view of an operand of slice shape `shape`, through `view` (a `<operand>View` attr) when there is one. */
export function headView(shape: Shape, view: readonly number[] | undefined): HeadView {
  if (view) {
    const [B, H, T, D, off, sB, sH, sT] = view as [number, number, number, number, number, number, number, number];
    return { shape: [B, H, T, D], H, off, sB, sH, sT };
  }
  const [T, D] = shape.slice(-2) as [number, number];
  return { shape, H: 1, off: 0, sB: T * D, sH: 0, sT: D };
}

/** Element offset of row (l, t) of a view. */
export function headRow(v: HeadView, l: number, t: number): number {
  return v.off + Math.floor(l / v.H) * v.sB + (l % v.H) * v.sH + t * v.sT;
}

export const KERNEL_KINDS = kindTable(
  defineKind('copy', {})({
    doc: 'dst = src: writes a persistent tensor whose new value could not be computed in place',
    inputs: { src: role.one('any shape') },
    outputs: { dst: role.one('same bytes as src') },
  }),

  defineKind('elementwise', {})({
    doc: 'a chain of elementwise ops; the domain is the shape of the outputs (all equal)',
    inputs: { operands: role.many('read as the steps say') },
    outputs: { results: role.many('one per expr.outputs, domain-shaped', (_, e) => e!.outputs.length) },
    expr: { doc: 'the chain; no acc' },
  }),

  defineKind('foreach', { groups: attr.int('T, number of groups'), groupInputs: attr.int('A, inputs per group'), groupOutputs: attr.int('B, outputs per group') })({
    doc:
      'one elementwise expression applied to several groups of same-shaped tensors (the optimizer ' +
      'update of many parameters in one launch); group t is computed exactly as an `elementwise` ' +
      'kernel over its own tensors',
    inputs: {
      grouped: role.many('group 0 inputs (A), group 1 inputs (A), ...', (a) => a.groups * a.groupInputs),
      shared: role.many('inputs every group reads (scalars such as step)'),
    },
    outputs: { grouped: role.many('group 0 outputs (B), group 1 outputs (B), ...', (a) => a.groups * a.groupOutputs) },
    expr: { doc: "the per-group chain: { input: k } is the group's input k when k < A, else shared input k - A; no acc" },
  }),

  defineKind('linear_ew', { bias: attr.flag('b is given') })({
    doc: 'acc = x·wᵀ + b (torch.nn.Linear), then an elementwise epilogue over [N, O]',
    inputs: { x: role.one('[N, I]'), w: role.one('[O, I]'), b: role.maybe('[O]', 'bias'), operands: role.many('epilogue operands') },
    outputs: { results: role.many('one per expr.outputs, [N, O]', (_, e) => e!.outputs.length) },
    expr: { doc: 'the epilogue; acc is the linear output at the element' },
  }),

  defineKind('linear_grad', { bias: attr.flag('write db'), dx: attr.flag('compute dx') })({
    doc: 'the backward of torch.nn.Linear from g = dL/dy: dw = gᵀ·x, db = Σ_n g, dx = g·w (then an epilogue)',
    inputs: { g: role.one('[N, O]'), x: role.one('[N, I]'), w: role.maybe('[O, I]', 'dx'), operands: role.many('epilogue operands') },
    outputs: {
      dw: role.one('[O, I]'),
      db: role.maybe('[O]', 'bias'),
      results: role.many('[N, I], with dx: dx itself, or one per expr.outputs', (a, e) => (!a.dx ? 0 : e ? e.outputs.length : 1)),
    },
    expr: { doc: "only with dx: the epilogue on dx (acc = dx at the element), e.g. the previous layer's ReLU mask", optional: true },
  }),

  defineKind('layer_norm_ew', {
    eps: attr.number("the layer norm's eps"),
    dims: attr.int('how many trailing dimensions a row spans (the length of normalized_shape)'),
    grad: attr.flag('the backward: acc = layer_norm_grad(g, x) instead of layer_norm(x)'),
  })({
    doc:
      'acc = layer_norm(x), or with grad layer_norm_grad(g, x) (src/ir/ops/layer-norm.ts: statistics per row, ' +
      "recomputed from x by the backward), then an elementwise epilogue over x's shape: the affine weight " +
      "and bias forward, the residual stream's gradient backward",
    inputs: { g: role.maybe("[x's shape]: dL/dx̂", 'grad'), x: role.one('[..., row]'), operands: role.many('epilogue operands') },
    outputs: { results: role.many("one per expr.outputs, x's shape", (_, e) => e!.outputs.length) },
    expr: { doc: 'the epilogue; acc is x̂ (or dx) at the element' },
  }),

  defineKind('layer_norm_backward', {
    eps: attr.number("the layer norm's eps"),
    dims: attr.int('how many trailing dimensions a row spans'),
    bias: attr.flag('write db'),
  })({
    doc:
      'the whole backward of y = layer_norm(x)·w (+ b) from g = dL/dy: dw = Σ_rows g·x̂, db = Σ_rows g, ' +
      'acc = layer_norm_grad(g·w, x) (the mul, sum_to and layer_norm_grad ops autodiff makes), then an epilogue ' +
      "over x's shape (the residual stream's gradient)",
    inputs: {
      g: role.one("[x's shape]"),
      x: role.one('[..., row]'),
      xhat: role.one("[x's shape]: the forward's x̂"),
      w: role.one('[row]'),
      operands: role.many('epilogue operands'),
    },
    outputs: {
      dw: role.one('[row]'),
      db: role.maybe('[row]', 'bias'),
      results: role.many("[x's shape]: dx itself, or one per expr.outputs", (_, e) => (e ? e.outputs.length : 1)),
    },
    expr: { doc: 'the epilogue on dx (acc = dx at the element)', optional: true },
  }),

  defineKind('softmax_cross_entropy', { grad: attr.flag('write dlogits'), gradScale: attr.number('dL/dloss (1 for a training step)') })({
    doc:
      'torch.nn.CrossEntropyLoss (mean) and, in the same pass, its gradient: ' +
      'loss = mean_n (logsumexp(logits[n]) - logits[n, label[n]]); dlogits = gradScale·(softmax(logits) - onehot(labels))/N',
    inputs: { logits: role.one('[N, K]'), labels: role.one('[N] (class indices as f32)') },
    outputs: { loss: role.one('[]'), dlogits: role.maybe('[N, K]', 'grad') },
  }),

  defineKind('linear_cross_entropy', {
    bias: attr.flag('b is given'),
    grad: attr.flag('write dlogits'),
    gradScale: attr.number('dL/dloss'),
    backward: attr.optional(attr.flag("with grad, the layer's own backward too, from dlogits: a linear_grad (splitLinearCrossEntropy)")),
    dx: attr.optional(attr.flag('with backward, compute dx')),
  })({
    doc:
      'logits = x·wᵀ + b, then softmax_cross_entropy on them; the logits are written too (an output of the step). With ' +
      "backward, then the layer's gradients from dlogits as linear_grad computes them: dw = dlogitsᵀ·x, db = Σ_n dlogits, dx = dlogits·w (then an epilogue)",
    inputs: {
      x: role.one('[N, I]'),
      w: role.one('[K, I]'),
      b: role.maybe('[K]', 'bias'),
      labels: role.one('[N]'),
      operands: role.many("the dx epilogue's operands"),
    },
    outputs: {
      logits: role.one('[N, K]'),
      loss: role.one('[]'),
      dlogits: role.maybe('[N, K]', 'grad'),
      dw: role.maybe('[K, I]', 'backward'),
      db: role.maybe('[K]', { backward: true, bias: true }),
      results: role.many('[N, I], with dx: dx itself, or one per expr.outputs', (a, e) => (!a.dx ? 0 : e ? e.outputs.length : 1)),
    },
    expr: { doc: "only with dx: the epilogue on dx (acc = dx at the element); { input: k } is the kernel's input k", optional: true },
  }),

  defineKind('batch_norm_stats', {
    xResults: attr.optional(attr.int("how many of expr's outputs, the last ones, lie over x's domain (absent: none)")),
    scalarResults: attr.optional(
      attr.int("how many of expr's outputs, after the [C] ones, have one element: small independent work riding in the launch (num_batches_tracked += 1)"),
    ),
    pool: attr.optional(attr.oneOf(['max', 'avg'], "a 4-D x's pool of the x-domain output poolOf (the max or average pool after the ReLU), a plane at a time as each is written")),
    poolOf: attr.optional(attr.int('which x-domain output the pool reads, counted among them (pool)')),
    poolKernel: attr.optional(attr.pair('[kh, kw] (pool)')),
    poolStride: attr.optional(attr.pair('[sh, sw] (pool)')),
    poolPadding: attr.optional(attr.pair('[ph, pw] (pool)')),
  })({
    doc:
      "a batch norm's training statistics in one kernel: mean = batch_mean(x), then var = batch_var(x, mean) " +
      '(biased, two passes over x as the op kernels make them: no cancellation)',
    inputs: { x: role.one('[N, C] or [N, C, H, W]'), operands: role.many('epilogue operands') },
    outputs: {
      mean: role.one('[C]'),
      var: role.one('[C]'),
      pooled: role.maybe('[N, C, PH, PW]: max_pool2d or avg_pool2d (as the ops compute them) of the x-domain output poolOf', { pool: ['max', 'avg'] }),
      results: role.many("one per expr.outputs: [C], then scalarResults of one element, then the last xResults x's shape", (_, e) => (e ? e.outputs.length : 0)),
    },
    expr: {
      doc:
        'an epilogue after both statistics, over three domains: [C] (the running-statistics update of ' +
        "torch.nn.BatchNorm's training forward), one element (the step counters), then x's shape (the normalization itself, the ReLU after it, a residual " +
        'sum: each element of x read once more, mean and var at its channel). { input: 0 } is mean, { input: 1 } var, ' +
        "{ input: k } operand k - 2 (the kernel's input k - 1; x itself, where the x-domain part reads it, is an operand too); no acc",
      optional: true,
    },
  }),

  defineKind('batch_norm_grad_stats', {
    eps: attr.number("the batch norm's eps"),
    dgamma: attr.flag('write dgamma'),
    dbeta: attr.flag('write dbeta'),
    dmean: attr.flag('write dmean'),
    dvar: attr.flag('write dvar'),
    gExpr: attr.flag(
      "g is not read from memory: it is expr's first output, computed at each element from the kernel's inputs in " +
        'every pass (the elementwise ops that make it, fused: a ReLU mask, a residual sum before it)',
    ),
    gPool: attr.optional(
      attr.oneOf(
        ['max', 'avg'],
        "with gExpr, the pool's backward that makes an operand of g's ops is computed too, a plane at a time (the pool after " +
          "this batch norm's ReLU): max_pool2d_grad(gPooled, poolIn) or avg_pool2d_grad(gPooled) at the element",
      ),
    ),
    poolKernel: attr.optional(attr.pair('[kh, kw] of the pool (gPool)')),
    poolStride: attr.optional(attr.pair('[sh, sw] of the pool (gPool)')),
    poolPadding: attr.optional(attr.pair('[ph, pw] of the pool (gPool)')),
  })({
    doc:
      "the per-channel partials of batch_norm from g = dL/dy, every sum over the same g and x in one kernel, r = 1/sqrt(var + eps): " +
      'dgamma = Σ g·(x-μ)·r, dbeta = Σ g, dmean = -Σ g·γ·r, dvar = -½ Σ g·γ·(x-μ)·r³ (batch_norm_grad wrt gamma, mean, var; sum)',
    inputs: {
      g: role.maybe("[x's shape]", { gExpr: false }),
      x: role.one('[N, C] or [N, C, H, W]'),
      mean: role.one('[C]'),
      var: role.one('[C]'),
      gamma: role.one('[C]'),
      gPooled: role.maybe(
        "[N, C, PH, PW]: the pool's output gradient; the expression's input of this index reads the pool's backward of it at the element, not it",
        { gPool: ['max', 'avg'] },
      ),
      poolIn: role.maybe("[x's shape]: the pool's input, whose window argmax routes the gradient", { gPool: 'max' }),
      operands: role.many('expression operands'),
    },
    outputs: {
      dgamma: role.maybe('[C]', 'dgamma'),
      dbeta: role.maybe('[C]', 'dbeta'),
      dmean: role.maybe('[C]', 'dmean'),
      dvar: role.maybe('[C]', 'dvar'),
      pooled: role.maybe(
        "[x's shape]: the pool's backward (gPool), made by the partials' pass and read back by the input gradient's, where the pool's own kernel would have written it",
        { gPool: ['max', 'avg'] },
      ),
      results: role.many("one per expr.outputs but g's, [x's shape]", (a, e) => (e ? e.outputs.length - (a.gExpr ? 1 : 0) : 0)),
    },
    expr: {
      doc:
        "with gExpr, output 0 is g, evaluated in the partials' pass too; the other outputs are an epilogue over x's domain " +
        'after every partial (batch_norm\'s input gradient from them): { input: k } is the kernel\'s input k, then (k past ' +
        'the inputs) its written partials in order, read at the channel; no acc. gExpr needs an expression',
      optional: true,
    },
  }),

  defineKind('attention', {
    causal: attr.flag('row i attends to columns j ≤ i only (torch: is_causal, the top-left aligned lower triangle)'),
    scale: attr.number('the factor on q·kᵀ (torch: scale, default 1/sqrt(D)), or with divide its divisor'),
    divide: attr.flag('the scores are divided by scale, as the model wrote them (s / c rounds otherwise than s · (1/c))'),
    lse: attr.flag('also write lse (the backward reads it)'),
    ...attentionDropout,
    ...headViews('q', 'k', 'v', 'y'),
  })({
    doc:
      'scaled dot-product attention per leading index (torch.nn.functional.scaled_dot_product_attention): ' +
      'p = softmax(q·kᵀ·scale, -inf above the diagonal when causal) along the last axis, p\' = dropout(p) when dropout, y = p\'·v. ' +
      'One row of scores at a time: a row of p lives in scratch, the [T, S] matrix never reaches memory',
    memory: 'scores one row at a time in scratch (softmax over a whole row, not online): the [T, S] matrix is never stored',
    inputs: { q: role.one('[..., T, D]'), k: role.one('[..., S, D]'), v: role.one('[..., S, E]'), step: role.maybe('[]: the step counter, which keys the dropout mask', 'dropout') },
    outputs: {
      y: role.one('[..., T, E]'),
      lse: role.maybe("[..., T]: each row's logsumexp of its scaled, masked scores, from which the backward recomputes p", 'lse'),
    },
  }),

  defineKind('attention_grad', {
    causal: attr.flag("the forward's mask"),
    scale: attr.number("the forward's scale"),
    divide: attr.flag("the forward's divide"),
    ...attentionDropout,
    dkTransposed: attr.flag('dk is written as its transpose [..., D, S], as the graph made it (matmul(q, ds, transA))'),
    ...headViews('dy', 'q', 'k', 'v', 'y', 'dq', 'dk', 'dv'),
    dqkv: attr.flag('dq, dk and dv written in place into one output through dqView, dkView and dvView (never transposed)'),
  })({
    doc:
      "the backward of attention from dy = dL/dy, p (and the dropout mask) recomputed row by row from q, k, the forward's lse (and the step): " +
      "dv = p'ᵀ·dy, dp = dropout(dy·vᵀ), ds = p·(dp - Σ_j p·dp)·scale (softmax_grad, then the scale), dq = ds·k, dk = dsᵀ·q. " +
      'The reference computes it op by op; the wasm and WGSL kernels take Σ_j p·dp as Σ_e dy·y (the same sum regrouped, known before a row is visited)',
    memory: "p recomputed one row at a time from the forward's logsumexp: the [T, S] matrix is never stored",
    inputs: {
      dy: role.one('[..., T, E]'),
      q: role.one('[..., T, D]'),
      k: role.one('[..., S, D]'),
      v: role.one('[..., S, E]'),
      y: role.one("[..., T, E]: the forward's output"),
      lse: role.one('[..., T]'),
      step: role.maybe('[]: the step counter (the dropout mask)', 'dropout'),
    },
    outputs: {
      dq: role.maybe('[..., T, D]', { dqkv: false }),
      dk: role.maybe('[..., S, D] ([..., D, S] when dkTransposed)', { dqkv: false }),
      dv: role.maybe('[..., S, E]', { dqkv: false }),
      dqkv: role.maybe('[B, T, W]: the gradient of a fused qkv projection, whose three parts (the views) tile W', 'dqkv'),
    },
  }),

  defineKind('conv_block', { ...conv, argmax: attr.flag('also write the argmax of each max-pool window') })({
    doc:
      'c = conv2d(x, w) + b (NCHW, OIHW, zero padding, as torch); a = relu(c) or c; y = pool(a): max ' +
      '(padding is -inf) or avg (count_include_pad) or none. Only y is written (and argmax): c and a ' +
      'never reach memory',
    inputs: { x: role.one('[N, C, H, W]'), w: role.one('[O, C, KH, KW]'), b: role.maybe('[O]', 'bias') },
    outputs: {
      y: role.one('[N, O, PH, PW] (pooled; [N, O, HO, WO] when pool = none)'),
      argmax: role.maybe(
        '[N, O, PH, PW]: position ih·WO + iw of the window maximum in its plane of a; ties go to the first maximum in row-major window order, NaN wins (PyTorch CPU)',
        'argmax',
      ),
    },
  }),

  defineKind('conv_block_grad', {
    ...conv,
    saved: attr.oneOf(
      ['none', 'output', 'argmax', 'recompute'],
      "how the argmax and ReLU mask are known: 'none' (neither needed: act none, pool avg or none); " +
        "'output' (pool none, act relu: mask = y > 0); 'argmax' (pool max: routes by the argmax input, mask = y > 0 at the argmax, " +
        "since y is the window's maximum of a); 'recompute' (recomputes c from x, w, b)",
    ),
    fold: attr.flag("gy is not stored but computed as g2·w2 (the next linear layer's input gradient), viewed as y's shape"),
    dx: attr.flag('write dx'),
  })({
    doc:
      "the backward of a conv_block from gy = dL/dy: ga = pool backward of gy (max: all of a window's " +
      'gradient to its argmax, overlapping windows add; avg: gy/(kh·kw) to each window position); ' +
      'gc = ga where a > 0, else 0 (act = relu) or ga; dw = Σ gc·x over the windows (conv2d_grad_weight), ' +
      'db = Σ_{n,h,w} gc, dx = the transposed convolution of gc with w (conv2d_grad_input)',
    inputs: {
      gy: role.maybe("[y's shape]", { fold: false }),
      g2: role.maybe("[N, K]: the next linear layer's output gradient", 'fold'),
      w2: role.maybe('[K, O·PH·PW]: its weight', 'fold'),
      y: role.maybe("the conv_block's output", { saved: ['output', 'argmax'] }),
      argmax: role.maybe("the conv_block's argmax", { saved: 'argmax' }),
      x: role.one('[N, C, H, W]'),
      w: role.maybe('[O, C, KH, KW]', ['dx', { saved: 'recompute' }]),
      b: role.maybe('[O]', { saved: 'recompute', bias: true }),
    },
    outputs: { dw: role.one('[O, C, KH, KW]'), db: role.maybe('[O]', 'bias'), dx: role.maybe('[N, C, H, W]', 'dx') },
  }),
);

/** The kinds beyond the op table, by name. */
export type FusedKind = keyof typeof KERNEL_KINDS;

/** The sizes an attention kernel runs over: L leading positions (batch × heads) of q [..., T, D], k [..., S, D], v [..., S, E]. */
export interface AttentionDims {
  readonly L: number;
  readonly T: number;
  readonly S: number;
  readonly D: number;
  readonly E: number;
}

/** The keep test of attention's dropout: a kept element's 24 random bits are at least this. */
export const dropoutThreshold = (p: number): number => Math.ceil(p * 2 ** 24);

/** The sizes of an attention kernel from its operands' views (headView). */
export function attentionDims(q: HeadView, k: HeadView, v: HeadView): AttentionDims {
  const T = q.shape.at(-2)!;
  const D = q.shape.at(-1)!;
  return { L: numel(q.shape) / (T * D), T, S: k.shape.at(-2)!, D, E: v.shape.at(-1)! };
}

/**
 * A foreach kernel's expression and groups: each group's inputs as the expression indexes them
 * (its own, then the shared ones) and its outputs.
 */
export function foreachGroups<TI, TO>(k: KernelLike<TI, TO>): { expr: Expr; groups: { inputs: TI[]; outputs: TO[] }[] } {
  const { attrs: a, inputs, outputs, expr } = KERNEL_KINDS.foreach.read(k);
  const groups = Array.from({ length: a.groups }, (_, t) => ({
    inputs: [...inputs.grouped.slice(t * a.groupInputs, (t + 1) * a.groupInputs), ...inputs.shared],
    outputs: outputs.grouped.slice(t * a.groupOutputs, (t + 1) * a.groupOutputs),
  }));
  return { expr, groups };
}

/**
 * A linear_cross_entropy kernel with backward as the two kernels it runs one after the other: the
 * forward one (logits, loss, dlogits) and the linear_grad that reads its dlogits, with the
 * epilogue's inputs renumbered for it. Every backend runs it so, with its own kernels of the two
 * kinds: the last layer's forward, loss and backward in one launch.
 */
export function splitLinearCrossEntropy<TI, TO>(k: KernelLike<TI, TO>, dlogitsAsInput: (o: TO) => TI): { forward: Built<TI> & { outputs: TO[] }; backward: Built<TI> & { outputs: TO[] } } {
  const { attrs: a, inputs: i, outputs: o, expr } = KERNEL_KINDS.linear_cross_entropy.read(k);
  if (!a.backward || !o.dlogits || !o.dw) throw new Error('linear_cross_entropy: no backward to split off');
  const fwd = KERNEL_KINDS.linear_cross_entropy.build<TI | TO>({ bias: a.bias, grad: a.grad, gradScale: a.gradScale }, { x: i.x, w: i.w, b: i.b, labels: i.labels, operands: [] }, { logits: o.logits, loss: o.loss, dlogits: o.dlogits, results: [] });
  const dx = a.dx === true;
  // The epilogue reads the composed kernel's inputs (x, w, b, labels, operands...); linear_grad's are (g, x, w, operands...).
  const fixed = k.inputs.length - i.operands.length;
  const at = (input: number) => {
    if (input >= fixed) return (dx ? 3 : 2) + input - fixed;
    if (k.inputs[input] === i.x) return 1;
    if (dx && k.inputs[input] === i.w) return 2;
    throw new Error('linear_cross_entropy: the dx epilogue reads the bias or the labels, which linear_grad does not have');
  };
  const e = expr && { steps: expr.steps.map((s) => (s.prim === 'input' ? { ...s, input: at(s.input) } : s)), outputs: expr.outputs };
  const kind = KERNEL_KINDS.linear_grad;
  const bwdIn = { g: dlogitsAsInput(o.dlogits), x: i.x, w: dx ? i.w : undefined, operands: [...i.operands] };
  const bwdOut = { dw: o.dw, db: o.db, results: [...o.results] };
  const attrs = { bias: o.db !== undefined, dx };
  const bwd = e ? kind.build<TI | TO>(attrs, bwdIn, bwdOut, e) : kind.build<TI | TO>(attrs, bwdIn, bwdOut);
  return { forward: fwd as Built<TI> & { outputs: TO[] }, backward: bwd as Built<TI> & { outputs: TO[] } };
}

/**
 * batch_norm_stats' epilogue as its three parts, each with only the steps it needs: over [C] (the
 * running statistics), of one element (scalarResults), then over x's shape (the last xResults).
 */
export function statsEpilogue(a: { readonly xResults?: number; readonly scalarResults?: number }, expr: Expr): { channel: Expr; scalar: Expr; wide: Expr } {
  const [wide, scalar] = [a.xResults ?? 0, a.scalarResults ?? 0];
  const narrow = expr.outputs.length - wide - scalar;
  const range = (from: number, n: number) => Array.from({ length: n }, (_, j) => from + j);
  return { channel: pickOutputs(expr, range(0, narrow)), scalar: pickOutputs(expr, range(narrow, scalar)), wide: pickOutputs(expr, range(narrow + scalar, wide)) };
}

/**
 * Whether output `o` of a kernel may share the slice of its input `i`: each element is read before
 * it is written and no other element reads it. Holds for plain elementwise op kinds, `copy`,
 * `elementwise` kernels, `foreach` kernels within one group and the epilogues of batch_norm_stats
 * (operands) and batch_norm_grad_stats (g, x and operands; with gExpr, x and the operands g is
 * computed from).
 */
export function inPlaceAllowed(k: Pick<Kernel, 'kind' | 'attrs' | 'inputs' | 'outputs' | 'expr'>, i: number, o: number): boolean {
  const input = k.inputs[i];
  const output = k.outputs[o];
  if (!input || !output || input.bytes !== output.bytes || numel(input.shape) !== numel(output.shape)) return false;
  if (k.kind === 'foreach') {
    const a = k.attrs.groupInputs as number;
    const b = k.attrs.groupOutputs as number;
    return i < a * (k.attrs.groups as number) && Math.floor(i / a) === Math.floor(o / b);
  }
  // batch_norm_stats: each part of its epilogue reads each operand at the element (or channel) it
  // writes, but the parts run side by side (or one after another): a part may not overwrite what
  // another reads (the expression's input i + 1).
  if (k.kind === 'batch_norm_stats') {
    const fixed = k.attrs.pool === undefined ? 2 : 3;
    if (i < 1 || o < fixed) return false;
    if (!k.expr) return true;
    const parts = statsEpilogue(k.attrs as { xResults?: number; scalarResults?: number }, k.expr);
    const r = o - fixed;
    const [nc, ns] = [parts.channel.outputs.length, parts.scalar.outputs.length];
    const mine = r < nc ? parts.channel : r < nc + ns ? parts.scalar : parts.wide;
    return ![parts.channel, parts.scalar, parts.wide].some((e) => e !== mine && e.steps.some((s) => s.prim === 'input' && s.input === i + 1));
  }
  // batch_norm_grad_stats: its epilogue runs after every sum over g and x (a phase or dispatch of
  // its own), and reads them and its operands at the element it writes.
  // With gPool the pool's backward reads a window of gPooled and poolIn around each element: neither
  // may be written over.
  if (k.kind === 'batch_norm_grad_stats') {
    const fixed = (k.attrs.gExpr === true ? 4 : 5) + (k.attrs.gPool === 'max' ? 2 : k.attrs.gPool === 'avg' ? 1 : 0);
    const written = ['dgamma', 'dbeta', 'dmean', 'dvar'].filter((r) => k.attrs[r] === true).length + (k.attrs.gPool === undefined ? 0 : 1);
    return (i < (k.attrs.gExpr === true ? 1 : 2) || i >= fixed) && o >= written;
  }
  return k.kind === 'elementwise' || k.kind === 'copy' || elementwiseOf(k.kind, k.attrs) !== undefined;
}

/**
 * Storage buffers a kernel binds (Target.maxStorageBuffers): its distinct slices (an in-place pair
 * binds once) but the one-element ones a shader reads without a binding, the Program's constants
 * (literals) and the step input (a uniform; told by isStepSlice, not by its bytes, which later
 * values reuse). Any other one-element tensor (a loss, a one-channel layer's bias) binds a buffer
 * like any other: src/codegen/wgsl/shader.ts.
 */
export function storageBuffers(k: Pick<Kernel, 'inputs' | 'outputs'>, p: Pick<Program, 'constants' | 'inputs'>): number {
  const key = (s: Slice) => `${s.offset}:${s.bytes}`;
  const free = new Set(p.constants.map((c) => key(c.slice)));
  const seen = new Set<string>();
  for (const s of [...k.inputs, ...k.outputs]) if (!free.has(key(s)) && !isStepSlice(p, s)) seen.add(key(s));
  return seen.size;
}
