import type { Node } from '../ir/graph.ts';
import { KERNEL_KINDS } from '../ir/kernels.ts';
import { num } from '../ir/op.ts';
import { numel } from '../ir/shape.ts';
import { constantValue } from './constant-value.ts';
import type { Draft, FuseCtx } from './fuse-patterns.ts';

/**
 * Scaled dot-product attention, forward and backward, as one kernel each (src/ir/kernels.ts:
 * attention, attention_grad), from the ops that compute it, however the model wrote them
 * (F.scaledDotProductAttention writes the same ops out):
 *
 *   s = matmul(q, k, transB)  [· c or / c]  [where(causal mask, -inf, ·)]  p = softmax(·, last)
 *   [p' = dropout(p, step)]  y = matmul(p', v)
 *
 * A mask is causal when its values are (it depends on nothing but constants and iota, and is 1
 * exactly above the diagonal), whatever ops made it. The backward is the chain autodiff makes
 * from these: dv = matmul(p', dy, transA), dp = dropout(matmul(dy, v, transB)), softmax_grad,
 * where_grad2, the scale, dq = matmul(ds, k), dk = matmul(ds, q, transA) or its transpose
 * matmul(q, ds, transA). Nothing fuses unless every intermediate feeds only the chain: p never
 * reaches memory, the backward recomputes it from each row's logsumexp.
 */
export function matchAttention(ctx: FuseCtx, claimed: ReadonlySet<number>): Draft[] {
  const drafts: Draft[] = [];
  for (const p of ctx.g.nodes) {
    if (p.op !== 'softmax' || claimed.has(p.id) || num(p.attrs, 'dim') !== p.shape.length - 1) continue;
    const at = attentionAt(ctx, p);
    if (!at) continue;
    const found = throughHeadViews(ctx, at);
    const { forward, backward } = found;
    const fwd = KERNEL_KINDS.attention.build(forward.attrs, forward.inputs, forward.outputs);
    if (!ctx.fits(fwd.inputs, fwd.outputs, backward ? 1 : 0)) continue;
    if (backward) {
      const bwd = KERNEL_KINDS.attention_grad.layout(backward.inputs, backward.outputs);
      if (!ctx.fits(bwd.inputs, bwd.outputs, 1)) continue;
      const lse = ctx.addValue(`%${forward.outputs.y}.lse`, p.shape.slice(0, -1));
      drafts.push({ nodes: forward.nodes, ...KERNEL_KINDS.attention.build({ ...forward.attrs, lse: true }, forward.inputs, { ...forward.outputs, lse }) });
      drafts.push({ nodes: backward.nodes, ...KERNEL_KINDS.attention_grad.build(backward.attrs, { ...backward.inputs, lse }, backward.outputs) });
    } else drafts.push({ nodes: forward.nodes, ...fwd });
  }
  return drafts;
}

type Attrs = { causal: boolean; scale: number; divide: boolean; dropout: boolean; p?: number; stream?: number };
type Views = { qView?: number[]; kView?: number[]; vView?: number[]; yView?: number[]; dyView?: number[]; dqView?: number[]; dkView?: number[]; dvView?: number[] };

interface Found {
  forward: { attrs: Attrs & Views & { lse: boolean }; nodes: number[]; inputs: { q: number; k: number; v: number; step?: number }; outputs: { y: number } };
  backward?: {
    attrs: Attrs & Views & { dkTransposed: boolean; dqkv: boolean };
    nodes: number[];
    inputs: { dy: number; q: number; k: number; v: number; y: number; step?: number };
    outputs: { dq?: number; dk?: number; dv?: number; dqkv?: number };
  };
}

const HEADS = [0, 2, 1, 3];
const sameDims = (a: unknown, b: readonly number[]) => Array.isArray(a) && a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * A [B, H, T, D] operand the model split out of a [B, T, W] value, as x.view(B, T, H, D)
 * .transpose(1, 2) of a slice of the last axis (torch: qkv.split(C, 2) then the heads): the value
 * it can be read from in place, the headView attr that reads it there, and the permute and slice
 * that then need not run. Undefined unless those feed nothing but `allowed` (the attention's own
 * nodes).
 */
function headSplit(ctx: FuseCtx, id: number, allowed: readonly number[]): { value: number; view: number[]; nodes: number[] } | undefined {
  const { g, users, roots } = ctx;
  const only = (n: number, ...ok: number[]) => !roots.has(n) && users[n]!.every((u) => ok.includes(u));
  const p = g.nodes[id]!;
  if (p.op !== 'permute' || !sameDims(p.attrs.dims, HEADS) || !only(id, ...allowed)) return undefined;
  const r = g.nodes[p.inputs[0]!]!;
  if (r.op !== 'reshape' || r.shape.length !== 4 || !only(r.id, id)) return undefined;
  const [B, T, H, D] = r.shape as [number, number, number, number];
  const src = g.nodes[r.inputs[0]!]!;
  const last = src.op === 'slice' ? g.nodes[src.inputs[0]!]!.shape.length - 1 : -1;
  if (src.op === 'slice' && num(src.attrs, 'dim') === last && only(src.id, r.id)) {
    const x = g.nodes[src.inputs[0]!]!;
    const W = x.shape.at(-1)!;
    if (numel(x.shape) !== B * T * W) return undefined;
    return { value: x.id, view: [B, H, T, D, num(src.attrs, 'start'), T * W, D, W], nodes: [id, src.id] };
  }
  return { value: src.id, view: [B, H, T, D, 0, T * H * D, D, H * D], nodes: [id] };
}

/**
 * The attention found, reading its operands in place where the model split them out of a fused
 * projection (headSplit), writing y straight into the [B, T, H, D] layout its merge of heads
 * (y.transpose(1, 2)) makes, and reading dy from the layout the next layer's gradient has.
 */
function throughHeadViews(ctx: FuseCtx, found: Found): Found {
  const { forward, backward } = found;
  const allowed = [...forward.nodes, ...(backward?.nodes ?? [])];
  const fwd = { ...forward, attrs: { ...forward.attrs } as Found['forward']['attrs'], nodes: [...forward.nodes], inputs: { ...forward.inputs }, outputs: { ...forward.outputs } };
  const bwd = backward && { ...backward, attrs: { ...backward.attrs } as NonNullable<Found['backward']>['attrs'], nodes: [...backward.nodes], inputs: { ...backward.inputs } };
  for (const name of ['q', 'k', 'v'] as const) {
    const split = headSplit(ctx, forward.inputs[name], allowed);
    if (!split) continue;
    fwd.inputs[name] = split.value;
    fwd.attrs[`${name}View`] = split.view;
    fwd.nodes.push(...split.nodes);
    if (bwd) {
      bwd.inputs[name] = split.value;
      bwd.attrs[`${name}View`] = split.view;
    }
  }
  // y merged back: y.transpose(1, 2) feeding nothing but a view.
  const { g, users, roots } = ctx;
  const yu = users[forward.outputs.y]!;
  const merge = yu.length === 1 ? g.nodes[yu[0]!]! : undefined;
  if (merge && !roots.has(forward.outputs.y) && merge.op === 'permute' && sameDims(merge.attrs.dims, HEADS) && merge.shape.length === 4) {
    const [B, T, H, D] = merge.shape as [number, number, number, number];
    const view = [B, H, T, D, 0, T * H * D, D, H * D];
    fwd.outputs.y = merge.id;
    fwd.attrs.yView = view;
    fwd.nodes.push(merge.id);
    if (bwd) {
      bwd.inputs.y = merge.id;
      bwd.attrs.yView = view;
    }
  }
  if (bwd) {
    const dySplit = headSplit(ctx, backward!.inputs.dy, backward!.nodes);
    if (dySplit) {
      bwd.inputs.dy = dySplit.value;
      bwd.attrs.dyView = dySplit.view;
      bwd.nodes.push(...dySplit.nodes);
    }
    const merged = headsMerged(ctx, backward!.outputs as Required<Pick<NonNullable<Found['backward']>['outputs'], 'dq' | 'dk' | 'dv'>>, backward!.attrs.dkTransposed);
    if (merged) {
      bwd.outputs = { dqkv: merged.value };
      Object.assign(bwd.attrs, { dqkv: true, dkTransposed: false, dqView: merged.views[0], dkView: merged.views[1], dvView: merged.views[2] });
      bwd.nodes.push(...merged.nodes);
    }
  }
  return { forward: fwd, backward: bwd };
}

/**
 * The gradient of a fused qkv projection from dq, dk and dv, as autodiff makes it from headSplit's
 * ops: each merged back (permute to [B, T, H, D], a view), padded into its columns of [B, T, W]
 * (slice's gradient) and the three added. When the three pieces tile W, the kernel writes them in
 * place into the sum (one output, through three views) and none of those ops runs.
 */
function headsMerged(ctx: FuseCtx, out: { dq: number; dk: number; dv: number }, dkTransposed: boolean): { value: number; views: number[][]; nodes: number[] } | undefined {
  const { g, users, roots } = ctx;
  const single = (n: number) => (!roots.has(n) && users[n]!.length === 1 ? g.nodes[users[n]![0]!]! : undefined);
  const pieces = ([[out.dq, HEADS], [out.dk, dkTransposed ? [0, 3, 1, 2] : HEADS], [out.dv, HEADS]] as const).map(([id, dims]) => {
    const p = single(id);
    if (p?.op !== 'permute' || !sameDims(p.attrs.dims, dims) || p.shape.length !== 4) return undefined;
    const r = single(p.id);
    const pad = r?.op === 'reshape' ? single(r.id) : undefined;
    if (!r || pad?.op !== 'pad' || num(pad.attrs, 'dim') !== pad.shape.length - 1) return undefined;
    const [B, T, H, D] = p.shape as [number, number, number, number];
    const W = pad.shape.at(-1)!;
    const off = num(pad.attrs, 'before');
    if (numel(pad.shape) !== B * T * W || W - off - num(pad.attrs, 'after') !== H * D) return undefined;
    return { pad: pad.id, off, width: H * D, view: [B, H, T, D, off, T * W, D, W], nodes: [p.id, pad.id] };
  });
  if (pieces.some((x) => !x)) return undefined;
  const ps = pieces as NonNullable<(typeof pieces)[number]>[];
  // The pieces tile [0, W): sorted by offset, each starts where the last ended, the last ends at W.
  const sorted = [...ps].sort((a, b) => a.off - b.off);
  const W = g.nodes[ps[0]!.pad]!.shape.at(-1)!;
  if (sorted.some((x, i) => x.off !== (i === 0 ? 0 : sorted[i - 1]!.off + sorted[i - 1]!.width)) || sorted.at(-1)!.off + sorted.at(-1)!.width !== W) return undefined;
  // The sum: adds, each reading only pads and adds of this tree, all but the last feeding the next.
  const tops = ps.map(({ pad }) => {
    const path: number[] = [];
    // Up through adds, each the single user of the last; the top one may be read by anything.
    for (let a = single(pad); a?.op === 'add'; a = single(a.id)) path.push(a.id);
    return { top: path.at(-1) ?? pad, path };
  });
  const root = tops[0]!.top;
  const adds = new Set(tops.flatMap((t) => t.path));
  const inside = new Set([...ps.map((x) => x.pad), ...adds]);
  if (tops.some((t) => t.top !== root) || adds.size !== 2 || ![...adds].every((a) => g.nodes[a]!.inputs.every((i) => inside.has(i)))) return undefined;
  return { value: root, views: ps.map((x) => x.view), nodes: [...ps.flatMap((x) => x.nodes), ...adds] };
}

const isMatmul = (n: Node | undefined, transA: boolean, transB: boolean): n is Node =>
  n?.op === 'matmul' && (n.attrs.transA === true) === transA && (n.attrs.transB === true) === transB;

/** The scalar value of a literal node, if it is one. */
function literal(ctx: FuseCtx, id: number): number | undefined {
  const n = ctx.g.nodes[id]!;
  return n.op === 'const' ? num(n.attrs, 'value') : undefined;
}

/** Whether `mask` (broadcast to [..., T, S]) is 1 exactly where column j > row i, 0 elsewhere. */
function isCausalMask(ctx: FuseCtx, mask: number, T: number, S: number): boolean {
  const shape = ctx.g.nodes[mask]!.shape;
  if (shape.length < 2 || shape.at(-2) !== T || shape.at(-1) !== S || shape.slice(0, -2).some((d) => d !== 1)) return false;
  const v = constantValue(ctx.g, mask);
  if (!v) return false;
  for (let i = 0; i < T; i++) for (let j = 0; j < S; j++) if ((v[i * S + j] !== 0) !== j > i) return false;
  return true;
}

function attentionAt(ctx: FuseCtx, p: Node): Found | undefined {
  const { g, users, roots } = ctx;
  const node = (id: number) => g.nodes[id]!;
  const only = (id: number, ...allowed: number[]) => !roots.has(id) && users[id]!.every((u) => allowed.includes(u));
  const T = p.shape.at(-2)!;
  const S = p.shape.at(-1)!;

  // Backwards from p to the scores, each node feeding only the next.
  let consumer: Node = p;
  let m = node(p.inputs[0]!);
  let causal = false;
  let mask: number | undefined;
  const fwdNodes: number[] = [];
  if (m.op === 'where') {
    const [cond, fill, scores] = m.inputs as [number, number, number];
    if (literal(ctx, fill) !== -Infinity || !isCausalMask(ctx, cond, T, S) || !only(m.id, consumer.id)) return undefined;
    [causal, mask, consumer] = [true, cond, m];
    fwdNodes.push(m.id);
    m = node(scores);
  }
  let scale = 1;
  let scaledBy: Node | undefined;
  const c = m.op === 'mul' || m.op === 'div' ? literal(ctx, m.inputs[1]!) : undefined;
  if (c !== undefined && (m.op === 'mul' || c !== 0)) {
    if (!only(m.id, consumer.id)) return undefined;
    [scale, scaledBy, consumer] = [c, m, m];
    fwdNodes.push(m.id);
    m = node(m.inputs[0]!);
  }
  if (!isMatmul(m, false, true) || !only(m.id, consumer.id)) return undefined;
  const s = m;
  fwdNodes.push(s.id);
  const [q, k] = s.inputs as [number, number];
  const qs = node(q).shape;
  const lead = (sh: readonly number[]) => sh.slice(0, -2).join();
  if (qs.length < 3 || lead(qs) !== lead(node(k).shape) || lead(qs) !== lead(p.shape)) return undefined;

  // Forwards from p: optional dropout, then y = p'·v.
  const pu = users[p.id]!.map(node);
  const drop = pu.find((n) => n.op === 'dropout');
  const kept = drop ?? p;
  const y = users[kept.id]!.map(node).find((n) => isMatmul(n, false, false) && n.inputs[0] === kept.id);
  if (!y || roots.has(p.id) || (drop && roots.has(drop.id))) return undefined;
  const v = y.inputs[1]!;
  if (lead(node(v).shape) !== lead(qs)) return undefined;
  const step = drop?.inputs[1];
  const dropAttrs = drop ? { dropout: true, p: num(drop.attrs, 'p'), stream: num(drop.attrs, 'stream') } : { dropout: false };
  const attrs: Attrs = { causal, scale, divide: scaledBy?.op === 'div', ...dropAttrs };
  fwdNodes.push(p.id, ...(drop ? [drop.id] : []), y.id);
  const forward = { attrs: { ...attrs, lse: false }, nodes: fwdNodes, inputs: { q, k, v, step }, outputs: { y: y.id } };

  // The backward, when there is one: found from dv = matmul(p', dy, transA).
  const dvNode = users[kept.id]!.map(node).find((n) => isMatmul(n, true, false) && n.inputs[0] === kept.id);
  const softGrad = pu.find((n) => n.op === 'softmax_grad' && n.inputs[1] === p.id);
  if (!dvNode && !softGrad && only(p.id, ...(drop ? [drop.id] : [y.id])) && (!drop || only(drop.id, y.id))) return { forward };
  if (!dvNode || !softGrad) return undefined;
  const dy = dvNode.inputs[1]!;
  const dpRaw = users[v]!.map(node).find((n) => isMatmul(n, false, true) && n.inputs[0] === dy && n.inputs[1] === v);
  if (!dpRaw) return undefined;
  let dp = dpRaw;
  if (drop) {
    const dd = users[dpRaw.id]!.map(node).find((n) => n.op === 'dropout' && n.inputs[1] === step && n.attrs.stream === drop.attrs.stream && n.attrs.p === drop.attrs.p);
    if (!dd || !only(dpRaw.id, dd.id)) return undefined;
    dp = dd;
  }
  if (softGrad.inputs[0] !== dp.id || !only(dp.id, softGrad.id)) return undefined;
  let ds = softGrad;
  const bwdNodes = [dvNode.id, dpRaw.id, ...(dp !== dpRaw ? [dp.id] : []), softGrad.id];
  if (causal) {
    const wg = users[ds.id]!.map(node).find((n) => n.op === 'where_grad2' && n.inputs[1] === mask);
    if (!wg || !only(ds.id, wg.id)) return undefined;
    bwdNodes.push(wg.id);
    ds = wg;
  }
  if (scaledBy) {
    const by = scaledBy;
    const sg = users[ds.id]!.map(node).find((n) => n.op === by.op && n.inputs[0] === ds.id && n.inputs[1] === by.inputs[1]);
    if (!sg || !only(ds.id, sg.id)) return undefined;
    bwdNodes.push(sg.id);
    ds = sg;
  }
  const du = users[ds.id]!.map(node);
  const dq = du.find((n) => isMatmul(n, false, false) && n.inputs[0] === ds.id && n.inputs[1] === k);
  const dkRows = du.find((n) => isMatmul(n, true, false) && n.inputs[0] === ds.id && n.inputs[1] === q);
  const dkCols = du.find((n) => isMatmul(n, true, false) && n.inputs[0] === q && n.inputs[1] === ds.id);
  const dk = dkRows ?? dkCols;
  if (!dq || !dk || !only(ds.id, dq.id, dk.id)) return undefined;
  bwdNodes.push(dq.id, dk.id);
  // p (and p') feed only the chain: the forward, its gradient, dv.
  if (!only(p.id, ...(drop ? [drop.id] : [y.id, dvNode.id]), softGrad.id) || (drop && !only(drop.id, y.id, dvNode.id))) return undefined;
  return {
    forward,
    backward: {
      attrs: { ...attrs, dkTransposed: dk === dkCols, dqkv: false },
      nodes: bwdNodes,
      inputs: { dy, q, k, v, y: y.id, step },
      outputs: { dq: dq.id, dk: dk.id, dv: dvNode.id },
    },
  };
}
