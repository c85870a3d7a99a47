import { num } from '../../../../ir/op.ts';
import { numel } from '../../../../ir/shape.ts';
import { partsDispatch } from '../../grid.ts';
import type { Slice } from '../../../../ir/program.ts';
import { f32, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';

// One thread per line along `dim`: it finds the line's max (subtracted so no exp overflows) and
// sum, then writes the whole line. Lines are short here (classes), so a thread per line is enough.

type LineBody = (sh: Shader, at: (k: string) => string, n: number) => string[];

function perLine(ctx: KernelCtx, body: LineBody): WgslDispatch[] {
  const sh = new Shader(ctx);
  const shape = ctx.kernel.outputs[0]!.shape;
  const dim = num(ctx.kernel.attrs, 'dim');
  let inner = 1;
  for (let d = dim + 1; d < shape.length; d++) inner *= shape[d]!;
  const n = shape[dim]!;
  const at = (k: string) => `base + (${k}) * ${u32(inner)}`;
  const store = [`let base = (o / ${u32(inner)}) * ${u32(n * inner)} + o % ${u32(inner)};`, ...body(sh, at, n)].join('\n');
  return [partsDispatch(sh, ctx.kernel.name, [{ count: numel(shape) / n, length: 0, store }])];
}

/** Statements defining `mx` and `lse` = log Σ exp of the line read by `x`. */
export function logSumExp(n: number, x: (k: string) => string): string[] {
  return [
    `var mx = ${x('0u')};`,
    `for (var k = 1u; k < ${u32(n)}; k++) { mx = max(mx, ${x('k')}); }`,
    'var s: f32 = 0.0;',
    `for (var k = 0u; k < ${u32(n)}; k++) { s += exp(${x('k')} - mx); }`,
    'let lse = mx + log(s);',
  ];
}

export function logSoftmax(ctx: KernelCtx): WgslDispatch[] {
  const [x] = ctx.kernel.inputs;
  const y = ctx.kernel.outputs[0]!;
  return perLine(ctx, (sh, at, n) => [
    ...logSumExp(n, (k) => sh.read(x!, at(k))),
    `for (var k = 0u; k < ${u32(n)}; k++) { ${sh.write(y, at('k'))} = ${sh.read(x!, at('k'))} - lse; }`,
  ]);
}

/** g - exp(y)·Σ g, y = log_softmax output. */
export function logSoftmaxGrad(ctx: KernelCtx): WgslDispatch[] {
  const [g, y] = ctx.kernel.inputs;
  const dx = ctx.kernel.outputs[0]!;
  return perLine(ctx, (sh, at, n) => [
    'var s: f32 = 0.0;',
    `for (var k = 0u; k < ${u32(n)}; k++) { s += ${sh.read(g!, at('k'))}; }`,
    `for (var k = 0u; k < ${u32(n)}; k++) { ${sh.write(dx, at('k'))} = ${sh.read(g!, at('k'))} - exp(${sh.read(y!, at('k'))}) * s; }`,
  ]);
}

export function softmax(ctx: KernelCtx): WgslDispatch[] {
  const [x] = ctx.kernel.inputs;
  const y = ctx.kernel.outputs[0]!;
  return perLine(ctx, (sh, at, n) => [
    ...logSumExp(n, (k) => sh.read(x!, at(k))),
    `for (var k = 0u; k < ${u32(n)}; k++) { ${sh.write(y, at('k'))} = exp(${sh.read(x!, at('k'))} - mx) / s; }`,
  ]);
}

/** y·(g - Σ g·y), y = softmax output. */
export function softmaxGrad(ctx: KernelCtx): WgslDispatch[] {
  const [g, y] = ctx.kernel.inputs;
  const dx = ctx.kernel.outputs[0]!;
  return perLine(ctx, (sh, at, n) => [
    'var s: f32 = 0.0;',
    `for (var k = 0u; k < ${u32(n)}; k++) { s += ${sh.read(g!, at('k'))} * ${sh.read(y!, at('k'))}; }`,
    `for (var k = 0u; k < ${u32(n)}; k++) { ${sh.write(dx, at('k'))} = ${sh.read(y!, at('k'))} * (${sh.read(g!, at('k'))} - s); }`,
  ]);
}

/** torch.nn.CrossEntropyLoss(): mean over rows of logsumexp(row) - row[label]; labels are class indices stored as f32. */
export function crossEntropy(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [logits, labels] = ctx.kernel.inputs;
  const [N, K] = logits!.shape;
  sh.helper('row_loss', rowLossFn(sh, logits!, labels!, K!));
  return [partsDispatch(sh, ctx.kernel.name, [{ count: 1, length: N!, term: 'return row_loss(r);', store: `${sh.write(ctx.kernel.outputs[0]!, '0u')} = acc / ${f32(N!)};` }])];
}

/** `fn row_loss(r: u32) -> f32`: logsumexp(logits[r]) - logits[r, label[r]]. */
export function rowLossFn(sh: Shader, logits: Slice, labels: Slice, K: number): string {
  const x = (k: string) => sh.read(logits, `r * ${u32(K)} + ${k}`);
  return [
    'fn row_loss(r: u32) -> f32 {',
    ...logSumExp(K, x).map((l) => `  ${l}`),
    `  return lse - ${x(`u32(${sh.read(labels, 'r')})`)};`,
    '}',
    '',
  ].join('\n');
}

/** g·(softmax(row) - onehot(label))/N, one thread per row. */
export function crossEntropyGrad(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [g, logits, labels] = ctx.kernel.inputs;
  const dx = ctx.kernel.outputs[0]!;
  const [N, K] = logits!.shape;
  return [partsDispatch(sh, ctx.kernel.name, [{ count: N!, length: 0, store: rowGradStore(sh, logits!, labels!, dx, K!, `${sh.scalar(g!)} / ${f32(N!)}`) }])];
}

/** Store body writing row o of dlogits = scale·(softmax(row) - onehot(label)). */
export function rowGradStore(sh: Shader, logits: Slice, labels: Slice, dx: Slice, K: number, scale: string): string {
  const x = (k: string) => sh.read(logits, `o * ${u32(K)} + ${k}`);
  return [
    ...logSumExp(K, x),
    `let label = u32(${sh.read(labels, 'o')});`,
    `let scale = ${scale};`,
    `for (var k = 0u; k < ${u32(K)}; k++) {`,
    `  ${sh.write(dx, `o * ${u32(K)} + k`)} = scale * (exp(${x('k')} - lse) - select(0.0, 1.0, k == label));`,
    '}',
  ].join('\n');
}
