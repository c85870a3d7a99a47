import type { Graph, Node } from '../ir/graph.ts';
import { elementwiseOf, expandOp } from '../ir/elementwise.ts';
import { ExprBuilder, type Expr } from '../ir/expr.ts';
import { KERNEL_KINDS } from '../ir/kernels.ts';
import { numel, sameShape } from '../ir/shape.ts';
import type { Built } from '../ir/kernel-kind.ts';
import type { Target } from '../ir/target.ts';
import { packUpdates } from './fuse-foreach.ts';
import { matchAttention } from './fuse-attention.ts';
import { matchBatchNorm, matchConvBlocks, matchCrossEntropy, matchLayerNormGrads, matchLinearGrads, type Draft, type FuseCtx } from './fuse-patterns.ts';
import { baseOf, graphValues, producers, type FusedKernel, type KernelGraph, type KValue } from './kernel-graph.ts';

const LEAVES = new Set(['input', 'param', 'const']);

/** Ops an expression can inline: those of the elementwise table, with attrs that keep them elementwise. */
const isElementwise = (n: Node): boolean => elementwiseOf(n.op, n.attrs) !== undefined;

/**
 * Graph -> kernels, fusing by default and splitting by exception. First the patterns the kinds
 * of src/ir/kernels.ts exist for (conv blocks and their backward, cross-entropy with its linear
 * layer, linear gradients, batch norm's statistics, layer norm's backward); then, in graph order, every elementwise op joins the kernel that
 * makes one of its operands (an epilogue) when the shapes agree, no cycle between kernels
 * arises and the kernel stays within the target's storage-buffer limit; what is left runs as its
 * op kind.
 * Last, the per-parameter optimizer updates merge into multi-tensor kernels (fuse-foreach.ts).
 */
export function fuse(g: Graph, target: Pick<Target, 'maxStorageBuffers'>): KernelGraph {
  const limit = target.maxStorageBuffers;
  const values: KValue[] = graphValues(g);
  /** Whether a value takes a storage buffer where a kernel reads or writes it (src/ir/kernels.ts: storageBuffers). */
  const binds = (v: number) => values[v]!.constant === undefined && v !== g.inputs.step;
  const users = g.nodes.map(() => [] as number[]);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) users[i]!.push(n.id);
  const roots = new Set([...Object.values(g.outputs), ...Object.values(g.updates), ...Object.values(g.grads)]);
  const ctx: FuseCtx = {
    g,
    users,
    roots,
    addValue: (name, shape) => {
      values.push({ id: values.length, name, shape });
      return values.length - 1;
    },
    fits: (ins, outs, extra = 0) => new Set([...ins, ...outs].filter(binds)).size + extra <= limit,
  };

  const drafts: (Draft | undefined)[] = [];
  const owner = new Map<number, number>();
  const claimed = new Set<number>();
  const add = (d: Draft) => {
    for (const n of [...d.nodes, ...d.outputs]) owner.set(n, drafts.length);
    for (const n of d.nodes) claimed.add(n);
    drafts.push(d);
  };
  for (const match of [matchAttention, matchConvBlocks, matchCrossEntropy, matchLinearGrads, matchBatchNorm, matchLayerNormGrads]) for (const d of match(ctx, claimed)) add(d);

  const producerOf = (v: number) => owner.get(baseOf(values, v));
  /** Values a set of nodes (with fixed inputs) reads from outside itself. */
  const readsOf = (nodes: ReadonlySet<number>, fixed: readonly number[], members: readonly number[]) => {
    const r = new Set(fixed);
    for (const m of members) for (const u of g.nodes[m]!.inputs) if (!nodes.has(u)) r.add(u);
    return r;
  };
  const reads = (d: Draft) => readsOf(new Set(d.nodes), d.inputs, d.epilogue ?? []);
  const reaches = (from: number, targets: ReadonlySet<number>) => {
    const seen = new Set([from]);
    const stack = [from];
    while (stack.length) {
      for (const v of reads(drafts[stack.pop()!]!)) {
        const p = producerOf(v);
        if (p === undefined || seen.has(p)) continue;
        if (targets.has(p)) return true;
        seen.add(p);
        stack.push(p);
      }
    }
    return false;
  };
  /** Whether a value must reach memory: a root, or read (directly or through views) outside `inside`. */
  const viewUsers = (v: number): number[] => users[v]!.flatMap((u) => (g.nodes[u]!.op === 'reshape' ? [u, ...viewUsers(u)] : [u]));
  const needed = (v: number, inside: ReadonlySet<number>) => roots.has(v) || viewUsers(v).some((u) => (g.nodes[u]!.op === 'reshape' ? roots.has(u) : !inside.has(u)));
  const stateNode = new Map(g.state.map((s) => [s.name, s.node]));
  /** New value of a persistent tensor -> the leaf holding its old value. */
  const updated = new Map(Object.entries(g.updates).map(([name, v]) => [v, stateNode.get(name)!]));

  /** Drafts `ids` (at most one anchored) and node e, if any, as one kernel: legal, and within the limit? */
  const canMerge = (ids: readonly number[], e?: Node) => {
    const group = ids.map((i) => drafts[i]!);
    const extra = e ? [e.id] : [];
    const nodes = new Set([...group.flatMap((d) => d.nodes), ...extra]);
    const open = new Set([...group.flatMap((d) => [...(d.epilogue ?? []), ...(d.acc === undefined ? [] : [d.acc]), ...(d.open ?? [])]), ...extra]);
    const members = [...group.flatMap((d) => d.epilogue ?? []), ...extra];
    // An epilogue reads the anchor's value and its own steps, never the kernel's other outputs
    // (nor any of its values through a view).
    // A fixed output an epilogue may read (Draft.open) is in memory before the epilogue runs, so
    // it may also be read through its channel view ([1, C] or [1, C, 1, 1] of a [C] output).
    const opened = new Set(group.flatMap((d) => d.open ?? []));
    const channelView = (u: number) => {
      const [s, b] = [values[u]!.shape, values[baseOf(values, u)]!.shape];
      return opened.has(baseOf(values, u)) && b.length === 1 && s.length >= 2 && s.every((d, i) => (i === 1 ? d === b[0] : d === 1));
    };
    if (members.some((m) => g.nodes[m]!.inputs.some((u) => nodes.has(baseOf(values, u)) && !open.has(u) && !channelView(u)))) return false;
    const fixedIn = group.flatMap((d) => d.inputs);
    // The anchor reads its own inputs before any epilogue step runs: none may be made inside the
    // kernel. (Merging `y = x.mul(2)` into the kernel of `y.add(relu(linear(y)))` made a
    // linear_ew that read y while also writing it.)
    if (fixedIn.some((v) => nodes.has(baseOf(values, v)))) return false;
    const ext = readsOf(nodes, fixedIn, members);
    const inside = new Set(ids);
    for (const v of ext) {
      const p = producerOf(v);
      if (p !== undefined && !inside.has(p) && reaches(p, inside)) return false;
    }
    const fixedOut = group.flatMap((d) => d.outputs);
    // A new value of a persistent tensor the kernel reads is written over it (plan-memory.ts): one binding.
    const inPlace = (v: number) => updated.has(v) && ext.has(updated.get(v)!);
    const outs = [...open].filter((m) => (m === e?.id || needed(m, nodes)) && !inPlace(m));
    const buffers = new Set([...ext, ...fixedOut, ...outs].filter(binds));
    return buffers.size <= limit;
  };

  /** Moves the elementwise drafts `ids` into draft `target`. */
  const merge = (target: number, ids: readonly number[]) => {
    const d = drafts[target]!;
    for (const i of ids) {
      if (i === target) continue;
      const other = drafts[i]!;
      d.nodes.push(...other.nodes);
      d.epilogue!.push(...other.epilogue!);
      for (const n of other.nodes) owner.set(n, target);
      drafts[i] = undefined;
    }
    return d;
  };

  const attach = (e: Node): boolean => {
    const cands = [...new Set(e.inputs.flatMap((u) => {
      const i = owner.get(u);
      const d = i === undefined ? undefined : drafts[i];
      if (!d?.epilogue || !(u === d.acc || d.epilogue.includes(u) || d.open?.includes(u))) return [];
      if (sameShape(d.domain!, e.shape)) return [i!];
      // The wide domain's members read the narrow one's open outputs, never its members.
      const narrow = (v: number) => d.epilogue!.includes(v) && !sameShape(g.nodes[v]!.shape, d.wide!);
      return d.wide && sameShape(d.wide, e.shape) && !e.inputs.some(narrow) ? [i!] : [];
    }))];
    const options = cands.length > 1 ? [cands, ...cands.map((c) => [c])] : cands.map((c) => [c]);
    for (const ids of options) {
      const anchored = ids.filter((i) => drafts[i]!.kind !== 'elementwise');
      if (anchored.length > 1 || !canMerge(ids, e)) continue;
      const target = anchored[0] ?? ids[0]!;
      const d = merge(target, ids);
      d.nodes.push(e.id);
      d.epilogue!.push(e.id);
      owner.set(e.id, target);
      claimed.add(e.id);
      return true;
    }
    return false;
  };

  /**
   * Node n into the kernel whose epilogue writes its one input, as that kind's tail (the pool
   * after a batch norm's ReLU): the input must reach memory anyway (the backward reads it), or the
   * tail would read what no one writes.
   */
  const takeTail = (n: Node): boolean => {
    const [y] = n.inputs;
    const i = y === undefined || n.inputs.length !== 1 ? undefined : owner.get(y);
    const d = i === undefined ? undefined : drafts[i];
    if (!d?.tail || d.tail.node !== undefined || !d.tail.accepts(n) || !d.epilogue!.includes(y!) || !sameShape(g.nodes[y!]!.shape, d.wide ?? d.domain!)) return false;
    if (!needed(y!, new Set([...d.nodes, n.id])) || !canMerge([i!], n)) return false;
    d.tail.node = n.id;
    d.nodes.push(n.id);
    // A fixed output from now on: later merges count its buffer.
    d.outputs.push(n.id);
    owner.set(n.id, i!);
    claimed.add(n.id);
    return true;
  };

  for (const n of g.nodes) {
    if (claimed.has(n.id) || LEAVES.has(n.op) || n.op === 'reshape') continue;
    if (n.op === 'linear') add(linearDraft(n));
    else if (n.op === 'layer_norm' || n.op === 'layer_norm_grad') add(layerNormDraft(n));
    else if (isElementwise(n)) {
      if (!attach(n)) add({ kind: 'elementwise', attrs: {}, nodes: [n.id], inputs: [], outputs: [], epilogue: [n.id], domain: n.shape, finish: elementwiseKernel });
    } else if (!takeTail(n)) add({ kind: n.op, attrs: n.attrs, nodes: [n.id], inputs: [...n.inputs], outputs: [n.id] });
  }

  // Independent elementwise kernels of one phase over the same domain run as one launch when
  // that saves a read (they share an operand) or the domain is small enough that running them
  // together cannot matter to peak memory (per-channel running statistics, step counters). The
  // optimizer's updates are left to packUpdates, which groups them by parameter.
  const SMALL_DOMAIN = 4096;
  const operandsOf = (d: Draft) => new Set([...reads(d)].filter((v) => values[v]!.constant === undefined));
  const phaseOf = (d: Draft) => {
    const phases = new Set(d.nodes.map((n) => g.nodes[n]!.phase));
    return phases.size === 1 && !phases.has('update') ? [...phases][0] : undefined;
  };
  // One-element work (step counters) rides in the first kernel of its phase that takes it.
  const rides = (a: Draft, b: Draft) => a.scalars === true && b.kind === 'elementwise' && numel(b.domain!) === 1;
  for (let i = 0; i < drafts.length; i++) {
    for (let j = i + 1; j < drafts.length; j++) {
      const [a, b] = [drafts[i], drafts[j]];
      if (!a || !b || phaseOf(a) === undefined || phaseOf(a) !== phaseOf(b)) continue;
      if (rides(a, b)) {
        if (canMerge([i, j])) merge(i, [i, j]);
        continue;
      }
      if (a.kind !== 'elementwise' || b.kind !== 'elementwise' || !sameShape(a.domain!, b.domain!)) continue;
      const ra = operandsOf(a);
      const shares = [...operandsOf(b)].some((v) => ra.has(v));
      if ((shares || numel(a.domain!) <= SMALL_DOMAIN) && canMerge([i, j])) merge(i, [i, j]);
    }
  }

  const finalize = (d: Draft): FusedKernel => {
    const ops = [...d.nodes].sort((a, b) => a - b).map((n) => g.nodes[n]!.op);
    if (!d.finish) return { kind: d.kind, ops, attrs: d.attrs, inputs: d.inputs, outputs: d.outputs };
    if (!d.epilogue) return { ops, ...d.finish([], []) };
    const members = [...d.epilogue].sort((a, b) => a - b);
    const inside = new Set(d.nodes);
    if (members.length === 0) return { ops, ...d.finish([], [d.acc!]) };
    const operands: number[] = [];
    const operand = (v: number): number => {
      if (d.inputs.includes(v)) return d.inputs.indexOf(v);
      if (!operands.includes(v)) operands.push(v);
      return d.inputs.length + operands.indexOf(v);
    };
    // Each member's template inlined, its operands read as the op's entry says.
    const b = new ExprBuilder();
    const stepOf = new Map<number, number>();
    for (const m of members) {
      const n = g.nodes[m]!;
      const read = (k: number, channel: boolean) => {
        const u = n.inputs[k]!;
        if (u === d.acc) return b.acc();
        const s = stepOf.get(u);
        if (s !== undefined) return s;
        const c = values[u]!.constant;
        return c === undefined ? b.input(operand(u), channel) : b.c(c);
      };
      const shapes = n.inputs.map((u) => values[u]!.shape);
      stepOf.set(m, expandOp(b, elementwiseOf(n.op, n.attrs)!, n.attrs, read, { shapes, out: n.shape })!);
    }
    const written = [...(d.acc === undefined ? [] : [d.acc]), ...members].filter((v) => needed(v, inside));
    const outs = d.pre === undefined ? written : [d.pre, ...written];
    return { ops, ...d.finish(operands, written, { steps: b.steps, outputs: outs.map((v) => (v === d.acc ? b.acc() : stepOf.get(v)!)) }) };
  };

  const live = drafts.filter((d): d is Draft => d !== undefined);
  const kernels = ordered(values, live.map(finalize), live.map((d) => Math.min(...d.nodes)));
  const kg: KernelGraph = {
    stage: g.stage,
    batchSize: g.batchSize,
    values,
    kernels,
    state: g.state.map((s) => ({ name: s.name, kind: s.kind, init: s.init, value: s.node })),
    inputs: g.inputs,
    outputs: g.outputs,
    updates: g.updates,
    grads: g.grads,
  };
  return packUpdates(kg, limit);
}

/** A linear layer, the anchor of an epilogue; with none it stays the op-table `linear` kernel. */
function linearDraft(n: Node): Draft {
  const [x, w, b] = n.inputs as [number, number, number | undefined];
  const kind = KERNEL_KINDS.linear_ew;
  const attrs = { bias: b !== undefined };
  const fixed = { x, w, b };
  return anchorDraft(n, kind.kind, attrs, kind.layout(fixed, {}), (operands, results, expr) => kind.build(attrs, { ...fixed, operands }, { results }, expr));
}

/** A layer norm's row kernel (forward or backward), the anchor of an epilogue; with none it stays its op's kernel. */
function layerNormDraft(n: Node): Draft {
  const kind = KERNEL_KINDS.layer_norm_ew;
  const grad = n.op === 'layer_norm_grad';
  const attrs = { eps: n.attrs.eps as number, dims: n.attrs.dims as number, grad };
  const fixed = grad ? { g: n.inputs[0]!, x: n.inputs[1]! } : { x: n.inputs[0]! };
  return anchorDraft(n, kind.kind, attrs, kind.layout(fixed, {}), (operands, results, expr) => kind.build(attrs, { ...fixed, operands }, { results }, expr));
}

/** Op node n as the anchor of an epilogue, built by `withEpilogue` once one joins; with none, n's own op kernel. */
function anchorDraft(n: Node, kind: string, attrs: Draft['attrs'], fixed: { inputs: number[]; outputs: number[] }, withEpilogue: (operands: readonly number[], results: readonly number[], expr: Expr) => Built<number>): Draft {
  return {
    kind,
    attrs,
    nodes: [n.id],
    ...fixed,
    acc: n.id,
    epilogue: [],
    domain: n.shape,
    finish: (operands, results, expr) => (expr ? withEpilogue(operands, results, expr) : { kind: n.op, attrs: n.attrs, inputs: [...n.inputs], outputs: [...results] }),
  };
}

const elementwiseKernel = (operands: readonly number[], results: readonly number[], expr?: Expr) => KERNEL_KINDS.elementwise.build({}, { operands }, { results }, expr!);

/** A topological order of the kernels, earliest graph position first among the ready ones. */
function ordered(values: readonly KValue[], kernels: FusedKernel[], key: number[]): FusedKernel[] {
  const prod = producers({ values, kernels });
  const deps = kernels.map((k, i) => new Set(k.inputs.flatMap((v) => {
    const p = prod.get(baseOf(values, v));
    return p === undefined || p === i ? [] : [p];
  })));
  const done = new Set<number>();
  const out: FusedKernel[] = [];
  while (out.length < kernels.length) {
    let best = -1;
    kernels.forEach((_, i) => {
      if (!done.has(i) && [...deps[i]!].every((d) => done.has(d)) && (best < 0 || key[i]! < key[best]!)) best = i;
    });
    if (best < 0) throw new Error('fuse: the kernels depend on each other in a cycle');
    done.add(best);
    out.push(kernels[best]!);
  }
  return out;
}
