import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import { numel } from '../../../ir/shape.ts';
import { partsDispatch } from '../grid.ts';
import { f32, i32, Shader, u32, unflatten, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { actAtFn, convBlock, poolArgmaxFn } from './conv-common.ts';

/**
 * conv_block: y = pool(act(conv2d(x, w) + b)), one thread per output of y; the activations under
 * a pooling window are computed in registers (C·KH·KW multiply-adds each) and never stored. For
 * SimpleCNN (1→32, 3×3, pool 2) that is 4·9 MACs per thread over 64·32·13·13 threads.
 */
export function convBlockKernel(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { attrs, inputs: { x, w, b }, outputs: { y, argmax } } = KERNEL_KINDS.conv_block.read(k);
  const g = convBlock(attrs, x.shape, w.shape);
  sh.helper('act_at', actAtFn(sh, g, x, w, b));
  const lines = [unflatten('o', [g.N, g.O, g.PH, g.PW], ['n', 'oc', 'ph', 'pw'])];
  if (g.pool === 'none') {
    lines.push(`${sh.write(y, 'o')} = act_at(n, oc, ph, pw);`);
  } else if (g.pool === 'max') {
    sh.helper('pool_argmax', poolArgmaxFn(g));
    lines.push(`let m = pool_argmax(n * ${u32(g.O)} + oc, ph, pw);`, `${sh.write(y, 'o')} = m.v;`);
    if (argmax) lines.push(`${sh.write(argmax, 'o')} = f32(m.pos);`);
  } else {
    // count_include_pad=True: padding counts in the divisor (see the avg_pool2d reference kernel).
    const p = g.win!;
    lines.push(
      'var sum: f32 = 0.0;',
      `for (var kh = 0u; kh < ${u32(p.kh)}; kh++) {`,
      `  let ih = ${i32(-p.ph)} + i32(ph * ${u32(p.sh)} + kh);`,
      `  if (ih < 0i || ih >= ${i32(g.HO)}) { continue; }`,
      `  for (var kw = 0u; kw < ${u32(p.kw)}; kw++) {`,
      `    let iw = ${i32(-p.pw)} + i32(pw * ${u32(p.sw)} + kw);`,
      `    if (iw < 0i || iw >= ${i32(g.WO)}) { continue; }`,
      '    sum += act_at(n, oc, u32(ih), u32(iw));',
      '  }',
      '}',
      `${sh.write(y, 'o')} = sum / ${f32(p.kh * p.kw)};`,
    );
  }
  return [partsDispatch(sh, k.name, [{ count: numel(y.shape), length: 0, store: lines.join('\n') }])];
}
