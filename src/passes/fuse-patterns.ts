import { valueKey } from '../ir/value-key.ts';
import type { Attrs, Graph, Node } from '../ir/graph.ts';
import type { Built } from '../ir/kernel-kind.ts';
import { KERNEL_KINDS } from '../ir/kernels.ts';
import { pair } from '../ir/op.ts';
import type { Expr } from '../ir/program.ts';
import { numel, sameShape, type Shape } from '../ir/shape.ts';
import { elementwiseOf, opExpr } from '../ir/elementwise.ts';

/** What the fusion pass knows of the graph while it matches. */
export interface FuseCtx {
  readonly g: Graph;
  /** Distinct readers of each node. */
  readonly users: readonly (readonly number[])[];
  /** Nodes a step must write: outputs, updates, gradients. */
  readonly roots: ReadonlySet<number>;
  /** Values beyond the graph's nodes (pool argmax), from id g.nodes.length on. */
  readonly addValue: (name: string, shape: Shape) => number;
  /** Whether a kernel reading `inputs` and writing `outputs` (plus `extra` new buffers) is within the storage-buffer limit. */
  readonly fits: (inputs: readonly number[], outputs: readonly number[], extra?: number) => boolean;
}

/**
 * A kernel in the making. `nodes` are the graph nodes it computes; `inputs` and `outputs` are the
 * kind's fixed operands. A draft that takes an elementwise epilogue has `epilogue` (its member
 * nodes), `domain` (their shape) and, for anchored kinds, `acc` (the node the epilogue reads).
 */
export interface Draft {
  kind: string;
  attrs: Attrs;
  nodes: number[];
  inputs: number[];
  outputs: number[];
  acc?: number;
  /** Fixed outputs besides `acc` that an epilogue may read (batch_norm_stats: mean and var). */
  open?: number[];
  epilogue?: number[];
  /**
   * An epilogue member whose value the kind reads as an input it computes itself at each element
   * (batch_norm_grad_stats' g): the expression's output 0, before the written values.
   */
  pre?: number;
  domain?: Shape;
  /**
   * A second epilogue domain, after `domain`'s (batch_norm_stats: x's shape, where the
   * normalization joins the statistics it reads). Its members may read `domain`'s open outputs
   * but not its members.
   */
  wide?: Shape;
  /**
   * A node past the epilogue the kind may compute from one of the epilogue's written values
   * (batch_norm_stats: the pool after the ReLU): which nodes it accepts, and the one it took.
   */
  tail?: { accepts: (n: Node) => boolean; node?: number };
  /** Takes one-element elementwise work of its phase into its epilogue (batch_norm_stats: the step counters). */
  scalars?: true;
  /**
   * For a kind that takes an epilogue: the kernel, from what its epilogue reads beyond the fixed
   * inputs, what it writes (`acc` alone, without an expression) and the expression.
   */
  finish?: (operands: readonly number[], results: readonly number[], expr?: Expr) => Built<number>;
}

const eqList = (a: unknown, b: unknown) => valueKey(a) === valueKey(b);
const sameConv = (a: Attrs, b: Attrs) => eqList(a.stride, b.stride) && eqList(a.padding, b.padding);
const samePool = (a: Attrs, b: Attrs) => eqList(a.kernel, b.kernel) && eqList(a.stride, b.stride) && eqList(a.padding, b.padding);
const isSum = (n: Node, axes: number[]) => n.op === 'sum' && eqList(n.attrs.axes, axes) && n.attrs.keepdim !== true;

interface ConvBackward {
  /** Gradient of the block's output. */
  gy: number;
  nodes: number[];
  dw: number;
  db?: number;
  dx?: number;
}

/**
 * The backward nodes of a conv block (c = conv2d, a = relu(c) or c, pool of a), found from the
 * weight gradient, which reads the block's input x: walks up from it through the ReLU mask and
 * the pool backward. Undefined unless exactly one chain matches and its intermediates feed
 * nothing else.
 */
function matchConvBackward(ctx: FuseCtx, c: Node, a: number, act: 'relu' | 'none', p: Node | undefined): ConvBackward | undefined {
  const { g, users, roots } = ctx;
  const [x, w, b] = c.inputs as [number, number, number | undefined];
  const chain = (dw: Node): ConvBackward | undefined => {
    const gconv = dw.inputs[0]!;
    const internal: number[] = [];
    let ga = gconv;
    if (act === 'relu') {
      const n = g.nodes[gconv]!;
      if (n.op !== 'relu_grad' || n.inputs[1] !== a) return undefined;
      internal.push(gconv);
      ga = n.inputs[0]!;
    }
    let gy = ga;
    if (p) {
      const n = g.nodes[ga]!;
      const ok = p.op === 'max_pool2d' ? n.op === 'max_pool2d_grad' && n.inputs[1] === a : n.op === 'avg_pool2d_grad' && sameShape(n.shape, g.nodes[a]!.shape);
      if (!ok || !samePool(n.attrs, p.attrs)) return undefined;
      if (ga !== gconv && (users[ga]!.length !== 1 || roots.has(ga))) return undefined;
      internal.push(ga);
      gy = n.inputs[0]!;
    }
    const gu = users[gconv]!.map((u) => g.nodes[u]!);
    const db = gu.find((n) => isSum(n, [0, 2, 3]))?.id;
    const dx = gu.find((n) => n.op === 'conv2d_grad_input' && n.inputs[1] === w && sameConv(n.attrs, c.attrs) && sameShape(n.shape, g.nodes[x]!.shape))?.id;
    if ((b === undefined) !== (db === undefined)) return undefined;
    const grads = [dw.id, ...(db === undefined ? [] : [db]), ...(dx === undefined ? [] : [dx])];
    if (internal.length > 0 && (roots.has(gconv) || !users[gconv]!.every((u) => grads.includes(u)))) return undefined;
    return { gy, nodes: [...internal, ...grads], dw: dw.id, db, dx };
  };
  const found = users[x]!.map((u) => g.nodes[u]!)
    .filter((n) => n.op === 'conv2d_grad_weight' && n.inputs[1] === x && sameConv(n.attrs, c.attrs) && sameShape(n.shape, g.nodes[w]!.shape))
    .flatMap((n) => chain(n) ?? []);
  return found.length === 1 ? found[0] : undefined;
}

/**
 * conv2d (+ ReLU) (+ max or average pool) forward, and the matching backward: pool backward,
 * ReLU mask and the weight, bias and input gradients. The forward writes only the block's output
 * y (and, for max pooling, the argmax the backward routes by: the recompute pass may trade it for
 * recomputing the convolution). A ReLU or pool joins only when its input feeds nothing else.
 */
export function matchConvBlocks(ctx: FuseCtx, claimed: ReadonlySet<number>): Draft[] {
  const { g, users, roots } = ctx;
  const drafts: Draft[] = [];
  for (const c of g.nodes) {
    if (c.op !== 'conv2d' || claimed.has(c.id)) continue;
    const [x, w, b] = c.inputs as [number, number, number | undefined];
    let a = c.id;
    let act: 'relu' | 'none' = 'none';
    const cu = users[c.id]!;
    if (cu.length === 1 && g.nodes[cu[0]!]!.op === 'relu' && !roots.has(c.id)) [a, act] = [cu[0]!, 'relu'];
    const pools = users[a]!.map((u) => g.nodes[u]!).filter((n) => n.op === 'max_pool2d' || n.op === 'avg_pool2d');
    let p = pools.length === 1 && !roots.has(a) ? pools[0] : undefined;
    let bwd = matchConvBackward(ctx, c, a, act, p);
    if (p) {
      const allowed = new Set([p.id, ...(bwd?.nodes ?? [])]);
      if (!users[a]!.every((u) => allowed.has(u))) {
        p = undefined;
        bwd = matchConvBackward(ctx, c, a, act, undefined);
      }
    }
    const y = p?.id ?? a;
    const pool = p ? (p.op === 'max_pool2d' ? 'max' : 'avg') : 'none';
    const saved = pool === 'max' ? 'argmax' : act === 'relu' ? (pool === 'none' ? 'output' : 'recompute') : 'none';
    const attrs = {
      stride: pair(c.attrs, 'stride'),
      padding: pair(c.attrs, 'padding'),
      bias: b !== undefined,
      act,
      pool,
      ...(p ? { poolKernel: pair(p.attrs, 'kernel'), poolStride: pair(p.attrs, 'stride'), poolPadding: pair(p.attrs, 'padding') } : {}),
    } as const;
    const grad = KERNEL_KINDS.conv_block_grad;
    const backward = bwd && {
      nodes: bwd.nodes,
      inputs: {
        gy: bwd.gy,
        y: saved === 'argmax' || saved === 'output' ? y : undefined,
        x,
        w: bwd.dx !== undefined || saved === 'recompute' ? w : undefined,
        b: saved === 'recompute' ? b : undefined,
      },
      outputs: { dw: bwd.dw, db: bwd.db, dx: bwd.dx },
    };
    const withArgmax = backward !== undefined && saved === 'argmax';
    // The argmax is made only once the block fuses: until then it counts as one more buffer.
    const bwdLists = backward && grad.layout(backward.inputs, backward.outputs);
    // Past the limit the block is not fused at all: its backward needs the activation stored.
    if (!ctx.fits(c.inputs, [y], withArgmax ? 1 : 0) || (bwdLists && !ctx.fits(bwdLists.inputs, bwdLists.outputs, withArgmax ? 1 : 0))) continue;
    const argmax = withArgmax ? ctx.addValue(`%${y}.argmax`, g.nodes[y]!.shape) : undefined;
    const nodes = [c.id, ...(act === 'relu' ? [a] : []), ...(p ? [p.id] : [])];
    if (act === 'none' && !p) drafts.push({ kind: 'conv2d', attrs: c.attrs, nodes, inputs: [...c.inputs], outputs: [c.id] });
    else drafts.push({ nodes, ...KERNEL_KINDS.conv_block.build({ ...attrs, argmax: argmax !== undefined }, { x, w, b }, { y, argmax }) });
    if (!backward) continue;
    drafts.push({ nodes: backward.nodes, ...grad.build({ ...attrs, saved, fold: false, dx: backward.outputs.dx !== undefined }, { ...backward.inputs, argmax }, backward.outputs) });
  }
  return drafts;
}

/**
 * Cross-entropy forward and backward in one pass over the logits, with the linear layer that
 * makes them when the logits feed nothing else: the step's last two kernels become one.
 */
export function matchCrossEntropy(ctx: FuseCtx, claimed: ReadonlySet<number>): Draft[] {
  const { g, users } = ctx;
  const drafts: Draft[] = [];
  for (const ce of g.nodes) {
    if (ce.op !== 'cross_entropy' || claimed.has(ce.id)) continue;
    const [logits, labels] = ce.inputs as [number, number];
    const grad = users[logits]!.map((u) => g.nodes[u]!).find((n) => n.op === 'cross_entropy_grad' && n.inputs[1] === logits && n.inputs[2] === labels && g.nodes[n.inputs[0]!]!.op === 'const');
    const attrs = { grad: grad !== undefined, gradScale: grad ? (g.nodes[grad.inputs[0]!]!.attrs.value as number) : 1 };
    const outs = [ce.id, ...(grad ? [grad.id] : [])];
    const l = g.nodes[logits]!;
    const mine = new Set(outs);
    if (l.op === 'linear' && !claimed.has(l.id) && users[logits]!.every((u) => mine.has(u))) {
      const [x, w, b] = l.inputs as [number, number, number | undefined];
      const kind = KERNEL_KINDS.linear_cross_entropy;
      // The layer's own backward from dlogits joins: its forward, loss and backward in one launch.
      const bwd = grad && linearGradsOf(ctx, claimed, l);
      if (bwd && bwd.grad === grad.id) {
        const full = { bias: b !== undefined, ...attrs, backward: true, dx: bwd.dx !== undefined };
        const fixedIn = { x, w, b, labels };
        const fixedOut = { logits, loss: ce.id, dlogits: grad.id, dw: bwd.dw, db: bwd.db };
        const lists = kind.layout(fixedIn, fixedOut);
        const nodes = [l.id, ...outs, bwd.dw, ...(bwd.db === undefined ? [] : [bwd.db]), ...(bwd.dx === undefined ? [] : [bwd.dx])];
        if (ctx.fits(lists.inputs, [...lists.outputs, ...(bwd.dx === undefined ? [] : [bwd.dx])])) {
          const finish: Draft['finish'] = (operands, results, expr) => kind.build(full, { ...fixedIn, operands }, { ...fixedOut, results }, expr);
          drafts.push(gradDraft(kind.kind, full, nodes, lists, bwd.dx === undefined ? undefined : g.nodes[bwd.dx]!, finish));
          continue;
        }
      }
      const k = kind.build({ bias: b !== undefined, ...attrs }, { x, w, b, labels, operands: [] }, { logits, loss: ce.id, dlogits: grad?.id, results: [] });
      if (ctx.fits(k.inputs, k.outputs)) {
        drafts.push({ nodes: [l.id, ...outs], ...k });
        continue;
      }
    }
    const k = KERNEL_KINDS.softmax_cross_entropy.build(attrs, { logits, labels }, { loss: ce.id, dlogits: grad?.id });
    if (ctx.fits(k.inputs, k.outputs)) drafts.push({ nodes: outs, ...k });
  }
  return drafts;
}

/** The gradient nodes of linear layer l from dL/dy (`grad`), found from the weight gradient; undefined unless exactly one set matches. */
function linearGradsOf(ctx: FuseCtx, claimed: ReadonlySet<number>, l: Node): { grad: number; dw: number; db?: number; dx?: number } | undefined {
  const { g, users } = ctx;
  const [x, w, b] = l.inputs as [number, number, number | undefined];
  const found = users[x]!.map((u) => g.nodes[u]!).flatMap((dw) => {
    if (dw.op !== 'matmul' || dw.inputs[1] !== x || dw.attrs.transA !== true || dw.attrs.transB === true || !sameShape(dw.shape, g.nodes[w]!.shape)) return [];
    const grad = dw.inputs[0]!;
    if (!sameShape(g.nodes[grad]!.shape, l.shape) || claimed.has(dw.id)) return [];
    const gu = users[grad]!.map((u) => g.nodes[u]!);
    const db = gu.find((n) => isSum(n, [0]))?.id;
    const dx = gu.find((n) => n.op === 'matmul' && n.inputs[1] === w && n.attrs.transA !== true && n.attrs.transB !== true)?.id;
    if ((b === undefined) !== (db === undefined)) return [];
    return [{ grad, dw: dw.id, db, dx }];
  });
  return found.length === 1 ? found[0] : undefined;
}

/** A gradient kernel's draft; the gradient `acc` computes, when given, takes an elementwise epilogue. */
function gradDraft(kind: string, attrs: Attrs, nodes: number[], fixed: { inputs: number[]; outputs: number[] }, acc: Node | undefined, finish: Draft['finish']): Draft {
  return { kind, attrs, nodes, ...fixed, ...(acc ? { acc: acc.id, epilogue: [], domain: acc.shape } : {}), finish };
}

/**
 * The three gradients of a linear layer from dL/dy: dw = gᵀx, db = Σ g, dx = g·w. Found from the
 * weight gradient, the one that always exists; dx takes an epilogue (the previous layer's ReLU
 * mask and dropout), filled in by the fusion driver.
 */
export function matchLinearGrads(ctx: FuseCtx, claimed: ReadonlySet<number>): Draft[] {
  const { g } = ctx;
  const drafts: Draft[] = [];
  for (const l of g.nodes) {
    if (l.op !== 'linear') continue;
    const [x, w] = l.inputs as [number, number];
    const found = linearGradsOf(ctx, claimed, l);
    if (!found) continue;
    const { grad, dw, db, dx } = found;
    const nodes = [dw, ...(db === undefined ? [] : [db]), ...(dx === undefined ? [] : [dx])];
    const kind = KERNEL_KINDS.linear_grad;
    const attrs = { bias: db !== undefined, dx: dx !== undefined };
    const fixedIn = { g: grad, x, w: dx === undefined ? undefined : w };
    const fixedOut = { dw, db };
    const { inputs, outputs } = kind.layout(fixedIn, fixedOut);
    if (nodes.some((n) => claimed.has(n)) || !ctx.fits(inputs, nodes)) continue;
    const finish: Draft['finish'] = (operands, results, expr) => kind.build(attrs, { ...fixedIn, operands }, { ...fixedOut, results }, expr);
    drafts.push(gradDraft(kind.kind, attrs, nodes, { inputs, outputs }, dx === undefined ? undefined : g.nodes[dx]!, finish));
  }
  return drafts;
}

/**
 * A batch norm's statistics, forward and backward: batch_mean(x) and batch_var(x, mean) as one
 * batch_norm_stats kernel; the per-channel partials of batch_norm (batch_norm_grad wrt gamma,
 * mean and var, all over the same g and x) and dbeta = Σ g as one batch_norm_grad_stats kernel.
 * When g is made by elementwise ops (the ReLU's mask, of a residual sum in a ResNet block), the
 * kernel computes it at each element from their operands (gExpr) instead of reading it: no pass
 * writes g, and the partials' pass and the input gradient's read gy and y instead (ResNet-20's
 * step: 128 → 109 kernels). Past the storage-buffer limit g is read as before; past it again,
 * dbeta is left to its own `sum`, then nothing fuses.
 */
export function matchBatchNorm(ctx: FuseCtx, claimed: ReadonlySet<number>): Draft[] {
  const { g, users } = ctx;
  const drafts: Draft[] = [];
  const taken = new Set<number>();
  for (const m of g.nodes) {
    if (m.op !== 'batch_mean' || claimed.has(m.id)) continue;
    const x = m.inputs[0]!;
    const v = users[m.id]!.map((u) => g.nodes[u]!).find((n) => n.op === 'batch_var' && n.inputs[0] === x && n.inputs[1] === m.id && !claimed.has(n.id));
    if (!v) continue;
    const kind = KERNEL_KINDS.batch_norm_stats;
    const k = kind.build({}, { x, operands: [] }, { mean: m.id, var: v.id, results: [] });
    if (!ctx.fits(k.inputs, k.outputs)) continue;
    // Two epilogues join, inlined by the fusion pass with mean and var as operands, read here as
    // the kind's inputs 0 and 1: the running-statistics update (momentum blends of mean and var)
    // over [C], and over x's shape the normalization and what follows it elementwise (ReLU,
    // dropout, a residual sum), which reads x as one more operand.
    const tail: NonNullable<Draft['tail']> = { accepts: (n) => (n.op === 'max_pool2d' || n.op === 'avg_pool2d') && g.nodes[x]!.shape.length === 4 };
    const finish = (operands: readonly number[], results: readonly number[], expr?: Expr) => {
      if (!expr) return k;
      const own = [...new Set(operands.filter((o) => o !== m.id && o !== v.id))];
      const readsX = expr.steps.some((s) => s.prim === 'input' && s.input === 0);
      if (readsX && !own.includes(x)) own.push(x);
      const at = (o: number) => (o === m.id ? 0 : o === v.id ? 1 : 2 + own.indexOf(o));
      const steps = expr.steps.map((s) => (s.prim !== 'input' ? s : { ...s, input: at(s.input === 0 ? x : operands[s.input - 1]!) }));
      // Results over [C] first, then those of one element, then those over x's shape, as the kind lists them.
      const order = [...results.keys()].sort((a, b) => classOf(results[a]!) - classOf(results[b]!));
      const xResults = results.filter((r) => classOf(r) === 2).length;
      const scalarResults = results.filter((r) => classOf(r) === 1).length;
      const ordered = order.map((j) => results[j]!);
      // The pool after the normalization, of one of its written outputs.
      const p = tail.node === undefined ? undefined : g.nodes[tail.node]!;
      const pool = p && {
        pool: p.op === 'max_pool2d' ? ('max' as const) : ('avg' as const),
        poolOf: ordered.indexOf(p.inputs[0]!) - (ordered.length - xResults),
        poolKernel: pair(p.attrs, 'kernel'),
        poolStride: pair(p.attrs, 'stride'),
        poolPadding: pair(p.attrs, 'padding'),
      };
      return kind.build({ ...(xResults ? { xResults } : {}), ...(scalarResults ? { scalarResults } : {}), ...pool }, { x, operands: own }, { mean: m.id, var: v.id, pooled: p?.id, results: ordered }, { steps, outputs: order.map((j) => expr.outputs[j]!) });
    };
    const classOf = (r: number) => {
      const s = g.nodes[r]!.shape;
      if (sameShape(s, g.nodes[m.id]!.shape)) return 0;
      if (sameShape(s, g.nodes[x]!.shape)) return 2;
      if (numel(s) === 1) return 1;
      throw new Error(`fuse: a batch_norm_stats epilogue writes %${r} [${s.join(', ')}], neither [C], one element nor x's shape`);
    };
    drafts.push({ nodes: [m.id, v.id], ...k, open: [m.id, v.id], epilogue: [], domain: g.nodes[m.id]!.shape, wide: g.nodes[x]!.shape, tail, scalars: true, finish });
  }
  const groups = new Map<string, Node[]>();
  for (const n of g.nodes) {
    if (n.op !== 'batch_norm_grad' || n.attrs.wrt === 'x' || claimed.has(n.id)) continue;
    const key = valueKey([n.inputs, n.attrs.eps]);
    groups.set(key, [...(groups.get(key) ?? []), n]);
  }
  for (const ns of groups.values()) {
    const first = ns[0]!;
    const [gy, x, mean, v, gamma] = first.inputs as [number, number, number, number, number];
    const one = (wrt: string) => ns.find((n) => n.attrs.wrt === wrt)?.id;
    const axes = g.nodes[x]!.shape.length === 4 ? [0, 2, 3] : [0];
    const sum = users[gy]!.map((u) => g.nodes[u]!).find((n) => isSum(n, axes) && !claimed.has(n.id) && !taken.has(n.id))?.id;
    const kind = KERNEL_KINDS.batch_norm_grad_stats;
    const chain = gradChain(ctx, claimed, taken, gy, g.nodes[x]!.shape);
    const made = new Set(chain);
    const outside = [...new Set(chain.flatMap((n) => g.nodes[n]!.inputs.filter((u) => !made.has(u))))];
    const pool = poolGradOf(ctx, claimed, taken, chain, outside, g.nodes[x]!.shape);
    const tries: [boolean, Node | undefined][] = chain.length ? [[true, pool], ...(pool ? [[true, undefined] as [boolean, undefined]] : []), [false, undefined]] : [[false, undefined]];
    found: for (const [gExpr, pg] of tries) {
      const leaves = pg ? [...outside.filter((u) => u !== pg.id), ...pg.inputs] : outside;
      for (const dbeta of [sum, undefined]) {
        const sums = { dgamma: one('gamma'), dbeta, dmean: one('mean'), dvar: one('var') };
        const partials = Object.values(sums).filter((o): o is number => o !== undefined);
        const outputs = { ...sums, pooled: pg?.id };
        if (partials.length < 2) break found;
        const poolAttrs = pg && {
          gPool: pg.op === 'max_pool2d_grad' ? ('max' as const) : ('avg' as const),
          poolKernel: pair(pg.attrs, 'kernel'),
          poolStride: pair(pg.attrs, 'stride'),
          poolPadding: pair(pg.attrs, 'padding'),
        };
        const attrs = { eps: first.attrs.eps as number, ...Object.fromEntries(Object.entries(sums).map(([r, o]) => [r, o !== undefined])), gExpr, ...poolAttrs } as {
          eps: number; dgamma: boolean; dbeta: boolean; dmean: boolean; dvar: boolean; gExpr: boolean;
        } & Partial<NonNullable<typeof poolAttrs>>;
        const fixed = { g: gExpr ? undefined : gy, x, mean, var: v, gamma, gPooled: pg?.inputs[0], poolIn: pg?.inputs[1] };
        const lists = kind.layout(fixed, outputs);
        // Room left for the input gradient's epilogue: without it, g made inside would cost more than it saves.
        if (!(gExpr ? ctx.fits([...lists.inputs, ...leaves], lists.outputs, 2) : ctx.fits(lists.inputs, lists.outputs))) continue;
        for (const n of [...partials, ...(gExpr ? chain : []), ...(pg ? [pg.id] : [])]) taken.add(n);
        // The input gradient from the partials (batch_var_grad and the dmean term added to the wrt-x
        // part) joins as an epilogue over x's domain. The fusion pass numbers the operands past the
        // fixed inputs; a partial, or its channel view ([1, C] or [1, C, 1, 1]), is read here as
        // the kind's input past its operands, at the channel.
        const finish = (operands: readonly number[], results: readonly number[], expr?: Expr) => {
          if (!expr) {
            if (gExpr) throw new Error('fuse: batch_norm_grad_stats computing g without an expression');
            return kind.build(attrs, { ...fixed, operands: [] }, { ...outputs, results: [] });
          }
          const partialOf = (o: number) => partials.indexOf(g.nodes[o]!.op === 'reshape' ? g.nodes[o]!.inputs[0]! : o);
          const own = operands.filter((o) => partialOf(o) < 0 && o !== pg?.id);
          const nIn = lists.inputs.length;
          const steps = expr.steps.map((s) => {
            if (s.prim !== 'input' || s.input < nIn) return s;
            const o = operands[s.input - nIn]!;
            // The pool's backward, computed: read as the gPooled input.
            if (o === pg?.id) return { ...s, input: lists.inputs.indexOf(pg.inputs[0]!) };
            const p = partialOf(o);
            if (p < 0) return { ...s, input: nIn + own.indexOf(o) };
            return o === partials[p] ? { ...s, input: nIn + own.length + p } : { prim: 'input' as const, input: nIn + own.length + p, channel: true as const };
          });
          return kind.build(attrs, { ...fixed, operands: own }, { ...outputs, results }, { steps, outputs: expr.outputs });
        };
        const nodes = [...partials, ...(gExpr ? chain : []), ...(pg ? [pg.id] : [])];
        const epilogue = gExpr ? [...chain].sort((a, b) => a - b) : [];
        // g's ops read the pool's gradient, the kernel's own output.
        const open = [...partials, ...(pg ? [pg.id] : [])];
        drafts.push({ kind: kind.kind, attrs, nodes, inputs: lists.inputs, outputs: lists.outputs, open, epilogue, ...(gExpr ? { pre: gy } : {}), domain: g.nodes[x]!.shape, finish });
        break found;
      }
    }
  }
  return drafts;
}

/**
 * The pool backward whose result only g's ops read (LeNet's max_pool2d_grad into the ReLU's mask
 * before bn1): the batch norm's gradient kernel computes it too, a plane at a time, instead of
 * reading a gradient the size of x that a kernel of its own wrote (gPool). Needs a 4-D x.
 */
function poolGradOf(ctx: FuseCtx, claimed: ReadonlySet<number>, taken: ReadonlySet<number>, chain: readonly number[], outside: readonly number[], shape: Shape): Node | undefined {
  const { g, users, roots } = ctx;
  if (shape.length !== 4) return undefined;
  const inChain = new Set(chain);
  const found = outside.map((u) => g.nodes[u]!).filter((n) =>
    (n.op === 'max_pool2d_grad' || n.op === 'avg_pool2d_grad') && sameShape(n.shape, shape) && !claimed.has(n.id) && !taken.has(n.id) && !roots.has(n.id) && users[n.id]!.every((u) => inChain.has(u)),
  );
  return found.length === 1 ? found[0] : undefined;
}

/**
 * The elementwise ops that make a batch norm's g, for its grad-stats kernel to compute at each
 * element instead of reading g: g's own op and an op that only it reads (the residual sum before
 * a ReLU's mask), over x's shape, free of random bits and positions (a reduction pass has
 * neither). Empty when g is not an elementwise op's.
 */
function gradChain(ctx: FuseCtx, claimed: ReadonlySet<number>, taken: ReadonlySet<number>, gy: number, shape: Shape): number[] {
  const { g, users, roots } = ctx;
  const fits = (id: number) => {
    const n = g.nodes[id]!;
    if (claimed.has(id) || taken.has(id) || !sameShape(n.shape, shape) || elementwiseOf(n.op, n.attrs) === undefined) return false;
    const e = opExpr(n.op, n.attrs, n.inputs.map((u) => g.nodes[u]!.shape), n.shape);
    return e.steps.every((s) => s.prim !== 'rng' && s.prim !== 'index' && s.prim !== 'pow1m');
  };
  if (!fits(gy)) return [];
  return [gy, ...new Set(g.nodes[gy]!.inputs.filter((u) => fits(u) && !roots.has(u) && users[u]!.length === 1))];
}

/**
 * A layer norm's backward from g = dL/dy of y = x̂·w (+ b), x̂ = layer_norm(x), as autodiff makes
 * it: mul(g, w) into layer_norm_grad, sum_to(mul(g, x̂)) for dw, sum_to(g) for db. One
 * layer_norm_backward kernel, found from layer_norm_grad; dx takes an epilogue (the residual
 * stream's gradient), filled in by the fusion driver. Unmatched, layer_norm_grad anchors its own.
 */
export function matchLayerNormGrads(ctx: FuseCtx, claimed: ReadonlySet<number>): Draft[] {
  const { g, users, roots } = ctx;
  const drafts: Draft[] = [];
  const only = (id: number, user: number) => !roots.has(id) && users[id]!.length === 1 && users[id]![0] === user;
  for (const n of g.nodes) {
    if (n.op !== 'layer_norm_grad' || claimed.has(n.id)) continue;
    const [gxh, x] = n.inputs as [number, number];
    const m = g.nodes[gxh]!;
    if (m.op !== 'mul' || !only(m.id, n.id)) continue;
    const dims = n.attrs.dims as number;
    const wShape = n.shape.slice(n.shape.length - dims);
    const wi = m.inputs.findIndex((i) => sameShape(g.nodes[i]!.shape, wShape));
    const gy = m.inputs[1 - wi];
    if (wi < 0 || gy === undefined || !sameShape(g.nodes[gy]!.shape, n.shape)) continue;
    const w = m.inputs[wi]!;
    // Autodiff's ops may sit on either side of a view (simplify moves elementwise ops across
    // reshapes): values are matched through them.
    const base = (v: number): number => (g.nodes[v]!.op === 'reshape' ? base(g.nodes[v]!.inputs[0]!) : v);
    const views = (v: number): number[] => [v, ...users[v]!.filter((u) => g.nodes[u]!.op === 'reshape').flatMap(views)];
    const sumOf = (v: number) =>
      views(v).flatMap((u) => users[u]!.map((s) => g.nodes[s]!)).find((s) => s.op === 'sum_to' && sameShape(s.shape, wShape) && !claimed.has(s.id) && !roots.has(s.inputs[0]!));
    const isXhat = (v: number) => {
      const xh = g.nodes[base(v)]!;
      return xh.op === 'layer_norm' && base(xh.inputs[0]!) === base(x) && eqList([xh.attrs.eps, xh.attrs.dims], [n.attrs.eps, dims]);
    };
    const gys = new Set(views(base(gy)));
    const dwMul = [...gys].flatMap((v) => users[v]!.map((u) => g.nodes[u]!)).find((u) => {
      if (u.op !== 'mul' || u.id === m.id || claimed.has(u.id) || roots.has(u.id)) return false;
      const [a, b] = u.inputs as [number, number];
      return (gys.has(a) && isXhat(b)) || (gys.has(b) && isXhat(a));
    });
    const dw = dwMul && sumOf(dwMul.id);
    if (!dwMul || !dw || views(dwMul.id).flatMap((v) => users[v]!).some((u) => g.nodes[u]!.op !== 'reshape' && u !== dw.id)) continue;
    // x̂ read in x's own shape (its layer_norm node), g in the shape autodiff gave it.
    const xhat = base(gys.has(dwMul.inputs[0]!) ? dwMul.inputs[1]! : dwMul.inputs[0]!);
    const db = sumOf(gy)?.id;
    const nodes = [m.id, dwMul.id, dw.id, ...(db === undefined ? [] : [db]), n.id];
    const kind = KERNEL_KINDS.layer_norm_backward;
    const attrs = { eps: n.attrs.eps as number, dims, bias: db !== undefined };
    const fixedIn = { g: gy, x, xhat, w };
    const fixedOut = { dw: dw.id, db };
    const { inputs, outputs } = kind.layout(fixedIn, fixedOut);
    if (!ctx.fits(inputs, [...outputs, n.id])) continue;
    const finish: Draft['finish'] = (operands, results, expr) => kind.build(attrs, { ...fixedIn, operands }, { ...fixedOut, results }, expr);
    drafts.push(gradDraft(kind.kind, attrs, nodes, { inputs, outputs }, n, finish));
  }
  return drafts;
}
