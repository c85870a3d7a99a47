import { KERNEL_KINDS } from '../../../ir/kernels.ts';
import type { Slice } from '../../../ir/program.ts';
import { numel } from '../../../ir/shape.ts';
import { partsDispatch, WG, workgroupSum, type AnyPart } from '../grid.ts';
import { at, f32, i32, Shader, u32, unflatten, type KernelCtx, type WgslDispatch } from '../shader.ts';
import { actAtFn, convBlock, poolArgmaxFn, type ConvBlock } from './conv-common.ts';
import { coveringRange, WINDOW_MAX } from './ops/pool.ts';

/**
 * conv_block_grad, in one dispatch of two parts:
 * - dw and db: a workgroup per (output channel, input channel). Its threads stride over the
 *   places the gradient enters the convolution output (for max pooling, the pooled cells, each
 *   routing its gradient to its window's argmax; else every conv output position), find the
 *   gradient there once (gc: pool backward, ReLU mask, and with `fold` the next linear layer's
 *   input gradient g2·w2, all recomputed in registers), and add gc·x into KH·KW accumulators;
 *   the workgroup then sums each accumulator in a tree. db rides along in the c = 0 workgroups.
 * - dx: one thread per input element, gathering gc·w over the windows that read it.
 */
export function convBlockGradKernel(ctx: KernelCtx): WgslDispatch[] {
  const sh = new Shader(ctx);
  const k = ctx.kernel;
  const { attrs: a, inputs: ins, outputs: { dw, db, dx: dxOut } } = KERNEL_KINDS.conv_block_grad.read(k);
  const g = convBlock(a, ins.x.shape, dw.shape);
  const relu = g.act === 'relu';
  if (ins.w && a.saved === 'recompute') sh.helper('act_at', actAtFn(sh, g, ins.x, ins.w, ins.b));
  if (g.pool === 'max' && a.saved === 'recompute') sh.helper('pool_argmax', poolArgmaxFn(g));

  // gy at pooled cell (ph, pw) of channel oc.
  const cells = g.PH * g.PW;
  let gyAt: string;
  if (ins.g2) {
    const K = ins.g2.shape[1]!;
    gyAt = `fn gy_at(n: u32, oc: u32, ph: u32, pw: u32) -> f32 {
  let col = (oc * ${u32(g.PH)} + ph) * ${u32(g.PW)} + pw;
  var s: f32 = 0.0;
  for (var j = 0u; j < ${u32(K)}; j++) { s += ${sh.read(ins.g2, `n * ${u32(K)} + j`)} * ${sh.read(ins.w2!, `j * ${u32(g.O * cells)} + col`)}; }
  return s;
}
`;
  } else {
    gyAt = `fn gy_at(n: u32, oc: u32, ph: u32, pw: u32) -> f32 {
  return ${sh.read(ins.gy!, `((n * ${u32(g.O)} + oc) * ${u32(g.PH)} + ph) * ${u32(g.PW)} + pw`)};
}
`;
  }
  sh.helper('gy_at', gyAt);

  const cellIndex = `((n * ${u32(g.O)} + oc) * ${u32(g.PH)} + ph) * ${u32(g.PW)} + pw`;
  if (g.pool === 'max') {
    // A cell's window maximum (where its gradient goes) and the activation there, which is y:
    // the ReLU passes iff it is > 0. Saved, or recomputed from x, w, b.
    const cell =
      a.saved === 'argmax'
        ? `return WindowMax(u32(${sh.read(ins.argmax!, cellIndex)}), ${relu ? sh.read(ins.y!, cellIndex) : '1.0'});`
        : `return pool_argmax(n * ${u32(g.O)} + oc, ph, pw);`;
    if (a.saved === 'argmax') sh.helper('window_max', WINDOW_MAX);
    sh.helper(
      'cell',
      `fn cell_max(n: u32, oc: u32, ph: u32, pw: u32) -> WindowMax {
  ${cell}
}

fn cell_grad(n: u32, oc: u32, ph: u32, pw: u32, m: WindowMax) -> f32 {
  if (!(${relu ? 'm.v > 0.0' : 'true'})) { return 0.0; }
  return gy_at(n, oc, ph, pw);
}
`,
    );
  }

  // gc at conv output (oh, ow): what flows into the convolution there.
  const mask = !relu ? '' : a.saved === 'output' ? `if (!(${sh.read(ins.y!, `((n * ${u32(g.O)} + oc) * ${u32(g.HO)} + oh) * ${u32(g.WO)} + ow`)} > 0.0)) { return 0.0; }` : `if (!(act_at(n, oc, oh, ow) > 0.0)) { return 0.0; }`;
  let gcBody: string;
  if (g.pool === 'none') {
    gcBody = `${mask}\n  return gy_at(n, oc, oh, ow);`;
  } else {
    const p = g.win!;
    const per =
      g.pool === 'max'
        ? `let m = cell_max(n, oc, u32(ph), u32(pw)); if (m.pos == pos) { s += cell_grad(n, oc, u32(ph), u32(pw), m); }`
        : `s += gy_at(n, oc, u32(ph), u32(pw));`;
    gcBody = [
      g.pool === 'avg' ? mask : '',
      `let pos = oh * ${u32(g.WO)} + ow;`,
      coveringRange(p, g.PH, g.PW, 'oh', 'ow').replace(/\boh(Lo|Hi)\b/g, 'ph$1').replace(/\bow(Lo|Hi)\b/g, 'pw$1'),
      'var s: f32 = 0.0;',
      'for (var ph = phLo; ph <= phHi; ph++) {',
      `  for (var pw = pwLo; pw <= pwHi; pw++) { ${per} }`,
      '}',
      g.pool === 'avg' ? `return s / ${f32(p.kh * p.kw)};` : 'return s;',
    ]
      .filter(Boolean)
      .join('\n');
  }
  sh.helper('gc_at', `fn gc_at(n: u32, oc: u32, oh: u32, ow: u32) -> f32 {\n${gcBody.split('\n').map((l) => `  ${l}`).join('\n')}\n}\n`);

  // Where gradient enters the convolution: r over cells (max pooling) or over conv positions.
  const R = g.pool === 'max' ? g.N * cells : g.N * g.HO * g.WO;
  const contrib =
    g.pool === 'max'
      ? [unflatten('r', [g.N, g.PH, g.PW], ['n', 'ph', 'pw']), 'let m = cell_max(n, oc, ph, pw);', `return Contrib(cell_grad(n, oc, ph, pw, m), n, m.pos / ${u32(g.WO)}, m.pos % ${u32(g.WO)});`]
      : [unflatten('r', [g.N, g.HO, g.WO], ['n', 'oh', 'ow']), 'return Contrib(gc_at(n, oc, oh, ow), n, oh, ow);'];
  sh.helper('contrib', `struct Contrib { v: f32, n: u32, oh: u32, ow: u32 }\n\nfn contrib(oc: u32, r: u32) -> Contrib {\n${contrib.map((l) => `  ${l}`).join('\n')}\n}\n`);

  const KK = g.KH * g.KW;
  const dwCode = [
    `let oc = wg / ${u32(g.C)};`,
    `let c = wg % ${u32(g.C)};`,
    `var acc: array<f32, ${KK}>;`,
    'var bacc: f32 = 0.0;',
    `for (var r = lid; r < ${u32(R)}; r += ${u32(WG)}) {`,
    '  let cb = contrib(oc, r);',
    '  if (cb.v == 0.0) { continue; }',
    '  bacc += cb.v;',
    `  for (var kh = 0u; kh < ${u32(g.KH)}; kh++) {`,
    `    let ih = ${i32(-g.padding[0])} + i32(cb.oh * ${u32(g.stride[0])} + kh);`,
    `    if (ih < 0i || ih >= ${i32(g.H)}) { continue; }`,
    `    for (var kw = 0u; kw < ${u32(g.KW)}; kw++) {`,
    `      let iw = ${i32(-g.padding[1])} + i32(cb.ow * ${u32(g.stride[1])} + kw);`,
    `      if (iw < 0i || iw >= ${i32(g.W)}) { continue; }`,
    `      acc[kh * ${u32(g.KW)} + kw] += cb.v * ${sh.read(ins.x, at([g.N, g.C, g.H, g.W], ['cb.n', 'c', 'u32(ih)', 'u32(iw)']))};`,
    '    }',
    '  }',
    '}',
    `for (var j = 0u; j < ${u32(KK)}; j++) {`,
    workgroupSum('acc[j]', (s) => `${sh.write(dw, `wg * ${u32(KK)} + j`)} = ${s};`)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
    '}',
  ];
  if (db) dwCode.push('if (c == 0u) {', ...workgroupSum('bacc', (s) => `${sh.write(db, 'oc')} = ${s};`).split('\n').map((l) => `  ${l}`), '}');
  const parts: AnyPart[] = [{ groups: g.O * g.C, code: dwCode.join('\n') }];

  if (dxOut) parts.push(dxPart(sh, g, ins.w!, dxOut));
  return [partsDispatch(sh, k.name, parts)];
}

/** dx[n,c,ih,iw] = Σ_{oc,kh,kw} gc[n,oc,oh,ow]·w[oc,c,kh,kw] over the (oh, ow) whose window read (ih, iw). */
function dxPart(sh: Shader, g: ConvBlock, w: Slice, dx: Slice): AnyPart {
  const [sh0, sw0] = g.stride;
  const [ph0, pw0] = g.padding;
  const term = [
    unflatten('o', [g.N, g.C, g.H, g.W], ['n', 'c', 'ih', 'iw']),
    unflatten('r', [g.O, g.KH, g.KW], ['oc', 'kh', 'kw']),
    `let th = i32(ih + ${u32(ph0)}) - i32(kh);`,
    `let tw = i32(iw + ${u32(pw0)}) - i32(kw);`,
    `if (th < 0i || tw < 0i || th % ${i32(sh0)} != 0i || tw % ${i32(sw0)} != 0i) { return 0.0; }`,
    `let oh = u32(th / ${i32(sh0)});`,
    `let ow = u32(tw / ${i32(sw0)});`,
    `if (oh >= ${u32(g.HO)} || ow >= ${u32(g.WO)}) { return 0.0; }`,
    `return gc_at(n, oc, oh, ow) * ${sh.read(w, at([g.O, g.C, g.KH, g.KW], ['oc', 'c', 'kh', 'kw']))};`,
  ].join('\n');
  return { count: numel(dx.shape), length: g.O * g.KH * g.KW, term, store: `${sh.write(dx, 'o')} = acc;` };
}
