import { pair } from '../../../ir/op.ts';
import { storeFrom, type RefKernel } from './common.ts';

// NCHW activations, OIHW weights, as PyTorch. Input row ih = oh·stride - padding + kh; rows
// outside [0, H) are the zero padding and contribute nothing.

export const conv2dKernels: Record<string, RefKernel> = {
  conv2d: (out, [x, w, bias], node, [xs, ws]) => {
    const [sh, sw] = pair(node.attrs, 'stride');
    const [ph, pw] = pair(node.attrs, 'padding');
    const [N, C, H, W] = xs!;
    const [O, , KH, KW] = ws!;
    const [, , HO, WO] = node.shape;
    for (let n = 0; n < N!; n++)
      for (let o = 0; o < O!; o++)
        for (let oh = 0; oh < HO!; oh++)
          for (let ow = 0; ow < WO!; ow++) {
            let acc = bias ? bias[o]! : 0; // f64 accumulation over C·KH·KW products
            for (let c = 0; c < C!; c++)
              for (let kh = 0; kh < KH!; kh++) {
                const ih = oh * sh - ph + kh;
                if (ih < 0 || ih >= H!) continue;
                for (let kw = 0; kw < KW!; kw++) {
                  const iw = ow * sw - pw + kw;
                  if (iw < 0 || iw >= W!) continue;
                  acc += x![((n * C! + c) * H! + ih) * W! + iw]! * w![((o * C! + c) * KH! + kh) * KW! + kw]!;
                }
              }
            out[((n * O! + o) * HO! + oh) * WO! + ow] = acc;
          }
  },

  // dx[n,c,ih,iw] = Σ g[n,o,oh,ow]·w[o,c,kh,kw] over the output cells whose window read (ih, iw):
  // scattered from each output cell, exactly the forward's loop with the roles swapped.
  conv2d_grad_input: (out, [g, w], node, [gs, ws]) => {
    const [sh, sw] = pair(node.attrs, 'stride');
    const [ph, pw] = pair(node.attrs, 'padding');
    const [N, C, H, W] = node.shape;
    const [O, , KH, KW] = ws!;
    const [, , HO, WO] = gs!;
    const acc = new Float64Array(out.length);
    for (let n = 0; n < N!; n++)
      for (let o = 0; o < O!; o++)
        for (let oh = 0; oh < HO!; oh++)
          for (let ow = 0; ow < WO!; ow++) {
            const gv = g![((n * O! + o) * HO! + oh) * WO! + ow]!;
            for (let c = 0; c < C!; c++)
              for (let kh = 0; kh < KH!; kh++) {
                const ih = oh * sh - ph + kh;
                if (ih < 0 || ih >= H!) continue;
                for (let kw = 0; kw < KW!; kw++) {
                  const iw = ow * sw - pw + kw;
                  if (iw < 0 || iw >= W!) continue;
                  acc[((n * C! + c) * H! + ih) * W! + iw]! += gv * w![((o * C! + c) * KH! + kh) * KW! + kw]!;
                }
              }
          }
    storeFrom(out, acc);
  },

  // dw[o,c,kh,kw] = Σ_{n,oh,ow} g[n,o,oh,ow]·x[n,c,ih,iw]: a sum over N·HO·WO terms (over 10^4
  // for a real batch), accumulated in f64.
  conv2d_grad_weight: (out, [g, x], node, [gs, xs]) => {
    const [sh, sw] = pair(node.attrs, 'stride');
    const [ph, pw] = pair(node.attrs, 'padding');
    const [N, C, H, W] = xs!;
    const [O, , KH, KW] = node.shape;
    const [, , HO, WO] = gs!;
    for (let o = 0; o < O!; o++)
      for (let c = 0; c < C!; c++)
        for (let kh = 0; kh < KH!; kh++)
          for (let kw = 0; kw < KW!; kw++) {
            let acc = 0;
            for (let n = 0; n < N!; n++)
              for (let oh = 0; oh < HO!; oh++) {
                const ih = oh * sh - ph + kh;
                if (ih < 0 || ih >= H!) continue;
                for (let ow = 0; ow < WO!; ow++) {
                  const iw = ow * sw - pw + kw;
                  if (iw < 0 || iw >= W!) continue;
                  acc += g![((n * O! + o) * HO! + oh) * WO! + ow]! * x![((n * C! + c) * H! + ih) * W! + iw]!;
                }
              }
            out[((o * C! + c) * KH! + kh) * KW! + kw] = acc;
          }
  },
};
