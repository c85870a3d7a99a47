import { attentionDims, dropoutThreshold, headView, KERNEL_KINDS, type HeadView } from '../../../ir/kernels.ts';
import { Stream } from '../../../ir/rng.ts';
import { rngBits24 } from '../expr.ts';
import type { Slice } from '../../../ir/program.ts';
import { partsDispatch } from '../grid.ts';
import { Shader, u32, type KernelCtx, type WgslDispatch } from '../shader.ts';

/**
 * attention and attention_grad (src/ir/kernels.ts), one thread per row of scores: it walks the
 * row's columns, recomputing each score from q and k, and keeps its own output row (array<f32>)
 * in registers; no score matrix is stored. The backward takes dq by rows of queries and dk, dv by
 * columns (each thread sums over the rows that see its key), two dispatches so neither binds more
 * than eight buffers; softmax_grad's Σ_j p·dp is Σ_e dy·y, known before a row's columns are visited.
 */

/** x·scale, or x/scale when the model divides. */
const scaled = (sh: Shader, a: { scale: number; divide: boolean }, x: string) => `${x} ${a.divide ? '/' : '*'} ${sh.float(a.scale)}`;

/** fn att_score(qb, kb): scale·(q[qb..qb+D]·k[kb..kb+D]), rounded as the product then the scaling. */
function scoreFn(sh: Shader, q: Slice, k: Slice, D: number, a: { scale: number; divide: boolean }): void {
  sh.helper(
    'att_score',
    [
      'fn att_score(qb: u32, kb: u32) -> f32 {',
      '  var s: f32 = 0.0;',
      `  for (var c = 0u; c < ${u32(D)}; c++) { s += ${sh.read(q, 'qb + c')} * ${sh.read(k, 'kb + c')}; }`,
      `  return ${scaled(sh, a, 's')};`,
      '}',
      '',
    ].join('\n'),
  );
}

/**
 * dropout(x) at attention weight (row r, key column j) of a [L·T, S] domain, as the dropout op:
 * x·(1/(1-p)) where the draw at flat index r·S + j keeps it, else 0; x itself without dropout.
 */
function dropped(sh: Shader, a: { dropout: boolean; p?: number; stream?: number }, step: Slice | undefined, S: number, r: string, j: string, x: string): string {
  if (!a.dropout) return x;
  const bits = rngBits24(sh, Stream.DROPOUT + a.stream!, sh.scalar(step!), `${r} * ${u32(S)} + ${j}`);
  return `select(0.0, ${x} * ${sh.float(1 / (1 - a.p!))}, ${bits} >= ${sh.float(dropoutThreshold(a.p!))})`;
}

/** The index of row (l, t) of an operand read through its view (src/ir/kernels.ts: headView). */
function rowAt(v: HeadView, l: string, t: string): string {
  const lead = v.H === 1 ? `${l} * ${u32(v.sB)}` : `(${l} / ${u32(v.H)}) * ${u32(v.sB)} + (${l} % ${u32(v.H)}) * ${u32(v.sH)}`;
  return `(${v.off ? `${u32(v.off)} + ` : ''}${lead} + ${t} * ${u32(v.sT)})`;
}

/** Σ_c a[ab + c]·b[bb + c] over n, as a statement block setting `name`. */
const dot = (sh: Shader, name: string, a: Slice, ab: string, b: Slice, bb: string, n: number) =>
  `var ${name}: f32 = 0.0;\nfor (var c = 0u; c < ${u32(n)}; c++) { ${name} += ${sh.read(a, `${ab} + c`)} * ${sh.read(b, `${bb} + c`)}; }`;

export function attention(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs: a, inputs: { q, k: key, v, step }, outputs: { y, lse } } = KERNEL_KINDS.attention.read(k);
  const [qv, kv, vv, yv] = [headView(q.shape, a.qView), headView(key.shape, a.kView), headView(v.shape, a.vView), headView(y.shape, a.yView)];
  const { L, T, S, D, E } = attentionDims(qv, kv, vv);
  const sh = new Shader(ctx);
  scoreFn(sh, q, key, D, a);
  const store = [
    `let l = o / ${u32(T)};`,
    `let i = o % ${u32(T)};`,
    a.causal ? `let lim = min(i + 1u, ${u32(S)});` : `let lim = ${u32(S)};`,
    `let qb = ${rowAt(qv, 'l', 'i')};`,
    `var mx = att_score(qb, ${rowAt(kv, 'l', '0u')});`,
    `for (var j = 1u; j < lim; j++) { mx = max(mx, att_score(qb, ${rowAt(kv, 'l', 'j')})); }`,
    'var sum: f32 = 0.0;',
    `for (var j = 0u; j < lim; j++) { sum += exp(att_score(qb, ${rowAt(kv, 'l', 'j')}) - mx); }`,
    `var out: array<f32, ${E}>;`,
    'for (var j = 0u; j < lim; j++) {',
    `  let p = ${dropped(sh, a, step, S, 'o', 'j', `(exp(att_score(qb, ${rowAt(kv, 'l', 'j')}) - mx) / sum)`)};`,
    `  let vb = ${rowAt(vv, 'l', 'j')};`,
    `  for (var c = 0u; c < ${u32(E)}; c++) { out[c] += p * ${sh.read(v, 'vb + c')}; }`,
    '}',
    `let yb = ${rowAt(yv, 'l', 'i')};`,
    `for (var c = 0u; c < ${u32(E)}; c++) { ${sh.write(y, 'yb + c')} = out[c]; }`,
    ...(lse ? [`${sh.write(lse, 'o')} = mx + log(sum);`] : []),
  ].join('\n');
  return [partsDispatch(sh, k.name, [{ count: L * T, length: 0, store, mode: 'thread' }])];
}

export function attentionGrad(ctx: KernelCtx): WgslDispatch[] {
  const k = ctx.kernel;
  const { attrs: a, inputs: { dy, q, k: key, v, y, lse, step }, outputs } = KERNEL_KINDS.attention_grad.read(k);
  // dq, dk and dv: their own outputs, or views of one (dqkv).
  const [dq, dk, dv] = outputs.dqkv ? [outputs.dqkv, outputs.dqkv, outputs.dqkv] : [outputs.dq!, outputs.dk!, outputs.dv!];
  const [dqv, dkv, dvv] = [headView(dq.shape, outputs.dqkv && a.dqView), headView(dk.shape, outputs.dqkv && a.dkView), headView(dv.shape, outputs.dqkv && a.dvView)];
  const [dyv, qv, kv, vv, yv] = [headView(dy.shape, a.dyView), headView(q.shape, a.qView), headView(key.shape, a.kView), headView(v.shape, a.vView), headView(y.shape, a.yView)];
  const { L, T, S, D, E } = attentionDims(qv, kv, vv);
  /**
   * ds of row r = l·T + i (global row index) and key j: p recomputed from lse, the dropout mask's
   * gradient on dp, then softmax_grad and the scale; `kept` is p after dropout (for dv).
   */
  const ds = (sh: Shader, r: string, i: string, j: string) => [
    dot(sh, 'sum_dy_y', dy, rowAt(dyv, 'l', i), y, rowAt(yv, 'l', i), E),
    `let p = exp(att_score(${rowAt(qv, 'l', i)}, ${rowAt(kv, 'l', j)}) - ${sh.read(lse, r)});`,
    `let kept = ${dropped(sh, a, step, S, r, j, 'p')};`,
    dot(sh, 'dp0', dy, rowAt(dyv, 'l', i), v, rowAt(vv, 'l', j), E),
    `let dp = ${dropped(sh, a, step, S, r, j, 'dp0')};`,
    `let ds = ${scaled(sh, a, 'p * (dp - sum_dy_y)')};`,
  ];
  const rows = new Shader(ctx);
  scoreFn(rows, q, key, D, a);
  const byRow = [
    `let l = o / ${u32(T)};`,
    `let i = o % ${u32(T)};`,
    a.causal ? `let lim = min(i + 1u, ${u32(S)});` : `let lim = ${u32(S)};`,
    `var out: array<f32, ${D}>;`,
    'for (var j = 0u; j < lim; j++) {',
    ...ds(rows, 'o', 'i', 'j').map((s) => `  ${s}`),
    `  let kb = ${rowAt(kv, 'l', 'j')};`,
    `  for (var c = 0u; c < ${u32(D)}; c++) { out[c] += ds * ${rows.read(key, 'kb + c')}; }`,
    '}',
    `let dqb = ${rowAt(dqv, 'l', 'i')};`,
    `for (var c = 0u; c < ${u32(D)}; c++) { ${rows.write(dq, 'dqb + c')} = out[c]; }`,
  ].join('\n');
  const cols = new Shader(ctx);
  scoreFn(cols, q, key, D, a);
  const byColumn = [
    `let l = o / ${u32(S)};`,
    `let j = o % ${u32(S)};`,
    `var ak: array<f32, ${D}>;`,
    `var av: array<f32, ${E}>;`,
    // Causal: the rows that see key j are those at or past it.
    `for (var i = ${a.causal ? 'j' : '0u'}; i < ${u32(T)}; i++) {`,
    `  let r = l * ${u32(T)} + i;`,
    ...ds(cols, 'r', 'i', 'j').map((s) => `  ${s}`),
    `  let qb = ${rowAt(qv, 'l', 'i')};`,
    `  let dyb = ${rowAt(dyv, 'l', 'i')};`,
    `  for (var c = 0u; c < ${u32(D)}; c++) { ak[c] += ds * ${cols.read(q, 'qb + c')}; }`,
    `  for (var c = 0u; c < ${u32(E)}; c++) { av[c] += kept * ${cols.read(dy, 'dyb + c')}; }`,
    '}',
    // dk[l, j, c], or dk[l, c, j] when the graph made it transposed.
    `let dkb = ${rowAt(dkv, 'l', 'j')};`,
    `let dvb = ${rowAt(dvv, 'l', 'j')};`,
    `for (var c = 0u; c < ${u32(D)}; c++) { ${cols.write(dk, a.dkTransposed ? `(l * ${u32(D)} + c) * ${u32(S)} + j` : 'dkb + c')} = ak[c]; }`,
    `for (var c = 0u; c < ${u32(E)}; c++) { ${cols.write(dv, 'dvb + c')} = av[c]; }`,
  ].join('\n');
  return [
    partsDispatch(rows, `${k.name}.dq`, [{ count: L * T, length: 0, store: byRow, mode: 'thread' }]),
    partsDispatch(cols, `${k.name}.dkdv`, [{ count: L * S, length: 0, store: byColumn, mode: 'thread' }]),
  ];
}
