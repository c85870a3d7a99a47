import type { ConvAttrs } from '../../../ir/kernels.ts';
import type { Slice } from '../../../ir/program.ts';
import { windowOut, type Shape } from '../../../ir/shape.ts';
import { at, i32, u32, type Shader } from '../shader.ts';
import { argmaxFn, WINDOW_MAX } from './ops/pool.ts';
import { poolWindow, type PoolWindow } from '../../../ir/ops/pool.ts';

/** The geometry of a conv_block (src/ir/kernels.ts): convolution, activation, pooling. */
export interface ConvBlock {
  readonly N: number;
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly O: number;
  readonly KH: number;
  readonly KW: number;
  /** Convolution output (the activation a's plane). */
  readonly HO: number;
  readonly WO: number;
  /** Pooled output (= HO, WO when pool = none). */
  readonly PH: number;
  readonly PW: number;
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly act: 'relu' | 'none';
  readonly pool: 'max' | 'avg' | 'none';
  readonly win?: PoolWindow;
  readonly bias: boolean;
}

export function convBlock(attrs: ConvAttrs, x: Shape, w: Shape): ConvBlock {
  const { stride, padding, pool, act, bias } = attrs;
  const [N, C, H, W] = x as [number, number, number, number];
  const [O, , KH, KW] = w as [number, number, number, number];
  const HO = windowOut(H, KH, stride[0], padding[0]);
  const WO = windowOut(W, KW, stride[1], padding[1]);
  const win = pool === 'none' ? undefined : poolWindow(attrs, 'pool');
  const PH = win ? windowOut(HO, win.kh, win.sh, win.ph) : HO;
  const PW = win ? windowOut(WO, win.kw, win.sw, win.pw) : WO;
  return { N, C, H, W, O, KH, KW, HO, WO, PH, PW, stride, padding, act, pool, win, bias };
}

/**
 * `fn act_at(n, oc, oh, ow) -> f32`: the block's activation a at conv output (oh, ow), i.e.
 * conv2d + bias, then ReLU when act = relu. Computed where it is needed, never stored: that is
 * what keeps c and a out of memory.
 */
export function actAtFn(sh: Shader, g: ConvBlock, x: Slice, w: Slice, b: Slice | undefined): string {
  const relu = g.act === 'relu' ? '\n  c = select(c, 0.0, c < 0.0);' : '';
  return `fn act_at(n: u32, oc: u32, oh: u32, ow: u32) -> f32 {
  var c: f32 = ${b ? sh.read(b, 'oc') : '0.0'};
  for (var ci = 0u; ci < ${u32(g.C)}; ci++) {
    for (var kh = 0u; kh < ${u32(g.KH)}; kh++) {
      let ih = ${i32(-g.padding[0])} + i32(oh * ${u32(g.stride[0])} + kh);
      if (ih < 0i || ih >= ${i32(g.H)}) { continue; }
      for (var kw = 0u; kw < ${u32(g.KW)}; kw++) {
        let iw = ${i32(-g.padding[1])} + i32(ow * ${u32(g.stride[1])} + kw);
        if (iw < 0i || iw >= ${i32(g.W)}) { continue; }
        c += ${sh.read(x, at([g.N, g.C, g.H, g.W], ['n', 'ci', 'u32(ih)', 'u32(iw)']))} * ${sh.read(w, at([g.O, g.C, g.KH, g.KW], ['oc', 'ci', 'kh', 'kw']))};
      }
    }
  }${relu}
  return c;
}
`;
}

/** `fn pool_argmax(plane, ph, pw) -> WindowMax` over act_at, plane = n·O + oc: the max-pool window rule of max_pool2d. */
export function poolArgmaxFn(g: ConvBlock): string {
  return WINDOW_MAX + '\n' + argmaxFn('pool_argmax', g.HO, g.WO, g.win!, (plane, _, ih, iw) => `act_at(${plane} / ${u32(g.O)}, ${plane} % ${u32(g.O)}, ${ih}, ${iw})`);
}
