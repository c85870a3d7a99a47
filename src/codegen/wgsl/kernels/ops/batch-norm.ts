import { num } from '../../../../ir/op.ts';
import type { Slice } from '../../../../ir/program.ts';
import { numel } from '../../../../ir/shape.ts';
import { partsDispatch, type AnyPart, type Part } from '../../grid.ts';
import { f32, Shader, u32, type KernelCtx, type WgslDispatch } from '../../shader.ts';
import { elementwiseOp } from '../elementwise.ts';

// Per-channel statistics over [N, C] or [N, C, H, W]: output c sums the N·H·W elements of
// channel c, term r = (n, hw) at flat index (n·C + c)·HW + hw.

function channelIndex(x: Slice): string {
  const [, C, H, W] = x.shape;
  const hw = x.shape.length === 4 ? H! * W! : 1;
  return hw === 1 ? `r * ${u32(C!)} + o` : `((r / ${u32(hw)}) * ${u32(C!)} + o) * ${u32(hw)} + r % ${u32(hw)}`;
}

const count = (x: Slice) => numel(x.shape) / x.shape[1]!;

/** The part of a dispatch that writes out[c] = mean of channel c of x. */
export function meanPart(sh: Shader, x: Slice, out: Slice): Part {
  return { count: x.shape[1]!, length: count(x), term: `return ${sh.read(x, channelIndex(x))};`, store: `${sh.write(out, 'o')} = acc / ${f32(count(x))};` };
}

/** The part that writes out[c] = biased variance of channel c of x about mean[c]. */
export function varPart(sh: Shader, x: Slice, mean: Slice, out: Slice): Part {
  const term = `let d = ${sh.read(x, channelIndex(x))} - ${sh.read(mean, 'o')};\nreturn d * d;`;
  return { count: x.shape[1]!, length: count(x), term, store: `${sh.write(out, 'o')} = acc / ${f32(count(x))};` };
}

export function batchMean(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  return [partsDispatch(sh, ctx.kernel.name, [meanPart(sh, ctx.kernel.inputs[0]!, ctx.kernel.outputs[0]!)])];
}

/** Biased, as PyTorch's training forward; mean is batch_mean(x). */
export function batchVar(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const [x, mean] = ctx.kernel.inputs;
  return [partsDispatch(sh, ctx.kernel.name, [varPart(sh, x!, mean!, ctx.kernel.outputs[0]!)])];
}

/** g as a partial reads it at flat index `i`: a tensor, or code computing it there (lines, then its value). */
export type GradSource = Slice | ((i: string) => { lines: readonly string[]; value: string });

/**
 * The part writing one per-channel partial of batch_norm (wrt mean, var or gamma; or `beta`, Σ g)
 * from its inputs (g, x, mean, var, gamma), with the per-channel factors (γ, r = 1/sqrt(var + eps))
 * taken out of the sum:
 *   mean: -γr·Σ g   var: -½γr³·Σ g·(x-μ)   gamma: r·Σ g·(x-μ)   beta: Σ g
 */
export function gradPart(sh: Shader, wrt: unknown, eps: number, [g, x, mean, v, gamma]: readonly [GradSource, ...Slice[]], out: Slice): AnyPart {
  const i = channelIndex(x!);
  const at = typeof g === 'function' ? g('gi') : { lines: [], value: sh.read(g, 'gi') };
  const gv = [`let gi = ${i};`, ...at.lines].join('\n');
  const term = wrt === 'mean' || wrt === 'beta' ? `${gv}\nreturn ${at.value};` : `${gv}\nreturn ${at.value} * (${sh.read(x!, 'gi')} - ${sh.read(mean!, 'o')});`;
  const r = () => `(1.0 / sqrt(${sh.read(v!, 'o')} + ${f32(eps)}))`;
  const gm = () => sh.read(gamma!, 'o');
  const scale = wrt === 'beta' ? '' : wrt === 'mean' ? `-${gm()} * ${r()} * ` : wrt === 'var' ? `-0.5 * ${gm()} * ${r()} * ${r()} * ${r()} * ` : wrt === 'gamma' ? `${r()} * ` : undefined;
  if (scale === undefined) throw new Error(`wgsl: batch_norm_grad: unknown wrt ${String(wrt)}`);
  return { count: x!.shape[1]!, length: count(x!), term, store: `${sh.write(out, 'o')} = ${scale}acc;` };
}

/** wrt x is elementwise; wrt mean, var, gamma are per-channel sums (gradPart). */
export function batchNormGrad(ctx: KernelCtx): WgslDispatch[] {
  const wrt = ctx.kernel.attrs.wrt;
  if (wrt === 'x') return elementwiseOp(ctx);
  const sh = new Shader(ctx);
  const [g, ...rest] = ctx.kernel.inputs;
  const part = gradPart(sh, wrt, num(ctx.kernel.attrs, 'eps'), [g!, ...rest], ctx.kernel.outputs[0]!);
  return [partsDispatch(sh, ctx.kernel.name, [part])];
}
