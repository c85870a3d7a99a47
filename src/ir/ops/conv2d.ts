import { defineOp, ints, pair } from '../op.ts';
import { fmtShape, numel, windowOut } from '../shape.ts';

// Layouts are PyTorch's: activations NCHW, weights OIHW.

export const conv2d = defineOp({
  name: 'conv2d',
  doc: 'y = conv(x, w) + b, NCHW x OIHW, stride and zero padding',
  arity: [2, 3],
  shape: ([x, w, bias], a) => {
    const [sh, sw] = pair(a, 'stride');
    const [ph, pw] = pair(a, 'padding');
    if (x!.length !== 4) throw new Error(`conv2d expects a 4-d input [N, C, H, W], got ${fmtShape(x!)}`);
    if (w![1] !== x![1]) throw new Error(`conv2d expects ${w![1]} input channels, got ${x![1]} (input shape ${fmtShape(x!)})`);
    if (bias && (bias.length !== 1 || bias[0] !== w![0])) throw new Error(`conv2d bias ${fmtShape(bias)} does not match ${w![0]} output channels`);
    const ho = windowOut(x![2]!, w![2]!, sh, ph);
    const wo = windowOut(x![3]!, w![3]!, sw, pw);
    if (ho < 1 || wo < 1) throw new Error(`conv2d kernel ${w![2]}x${w![3]} does not fit input ${x![2]}x${x![3]} with padding ${ph},${pw}`);
    return [x![0]!, w![0]!, ho, wo];
  },
  flops: ([, w, bias], out) => numel(out) * (2 * w![1]! * w![2]! * w![3]! + (bias ? 1 : 0)),
  grad: (b, n, g) => {
    const [x, w, bias] = n.inputs;
    const attrs = { stride: n.attrs.stride!, padding: n.attrs.padding! };
    return [
      b.op('conv2d_grad_input', [g, w!], { ...attrs, shape: b.node(x!).shape }),
      b.op('conv2d_grad_weight', [g, x!], { ...attrs, shape: b.node(w!).shape }),
      bias === undefined ? undefined : b.op('sum', [g], { axes: [0, 2, 3], keepdim: false }),
    ];
  },
});

/** dL/dx of conv2d: the transposed convolution of the output gradient. */
export const conv2dGradInput = defineOp({
  name: 'conv2d_grad_input',
  doc: 'dx of conv2d from (g, w)',
  arity: 2,
  shape: (_, a) => ints(a, 'shape'),
  flops: ([g, w]) => 2 * numel(g!) * w![1]! * w![2]! * w![3]!,
});

/** dL/dw of conv2d: correlation of the output gradient with the input. */
export const conv2dGradWeight = defineOp({
  name: 'conv2d_grad_weight',
  doc: 'dw of conv2d from (g, x)',
  arity: 2,
  shape: (_, a) => ints(a, 'shape'),
  flops: ([g], out) => 2 * numel(g!) * out[1]! * out[2]! * out[3]!,
});
