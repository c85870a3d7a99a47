/**
 * TensorFlow.js 4.22 peer: the model with tf ops in TF.js's native NHWC layout, trained by
 * `optimizer.minimize`, on the `cpu` backend (pure JS, the default in Node without tfjs-node) or
 * the `wasm` backend (XNNPACK kernels, SIMD build).
 *
 * What it needed: TF.js's wasm backend ships no `Conv2DBackpropFilter` kernel, so conv models
 * cannot train on it as shipped. With `addFilterGrad` this harness registers one written in plain
 * JS (below); with `convGrad` it computes the weight gradient as a convolution on TF.js's own
 * kernels instead (tf.customGrad); each row says which. TF.js disables wasm threads in Node (tfjs
 * issue 3830: its threaded build needs browser Workers), so the wasm backend runs on one thread.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { main, progress, readF32, timeLoop, type Layer, type Optimizer, type PeerJob } from './protocol.ts';

type Params = { kind: Layer['op']; vars: tf.Variable[]; stats?: tf.Variable[] }[];

/** dW[kh, kw, ci, co] = Σ x[n, oh·s + kh − p, ow·s + kw − p, ci] · dy[n, oh, ow, co] (NHWC, HWIO). */
function conv2dFilterGrad(x: Float32Array, xShape: number[], dy: Float32Array, dyShape: number[], filterShape: number[], stride: number, pad: number): Float32Array {
  const [n, h, w, cin] = xShape as [number, number, number, number];
  const [, oh, ow, cout] = dyShape as [number, number, number, number];
  const [kh, kw] = filterShape as [number, number];
  const dw = new Float32Array(kh * kw * cin * cout);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const dyOff = ((b * oh + y) * ow + xo) * cout;
        for (let i = 0; i < kh; i++) {
          const iy = y * stride + i - pad;
          if (iy < 0 || iy >= h) continue;
          for (let j = 0; j < kw; j++) {
            const ix = xo * stride + j - pad;
            if (ix < 0 || ix >= w) continue;
            const xOff = ((b * h + iy) * w + ix) * cin;
            const wOff = (i * kw + j) * cin * cout;
            for (let c = 0; c < cin; c++) {
              const xv = x[xOff + c]!;
              const o = wOff + c * cout;
              for (let k = 0; k < cout; k++) dw[o + k] += xv * dy[dyOff + k]!;
            }
          }
        }
      }
    }
  }
  return dw;
}

interface WasmBackendish {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: string, offset?: number, values?: Float32Array): tf.TensorInfo;
}

function registerFilterGrad(): void {
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as WasmBackendish;
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const a = attrs as unknown as { strides: number | [number, number]; pad: number | 'valid' | 'same'; filterShape: number[]; dataFormat: string };
      if (a.dataFormat !== 'NHWC') throw new Error(`Conv2DBackpropFilter added by kiln bench: only NHWC, got ${a.dataFormat}`);
      const stride = typeof a.strides === 'number' ? a.strides : a.strides[0];
      const pad = a.pad === 'valid' ? 0 : a.pad === 'same' ? (a.filterShape[0]! - 1) >> 1 : a.pad;
      const dw = conv2dFilterGrad(b.typedArrayFromHeap(x), x.shape, b.typedArrayFromHeap(dy), dy.shape, a.filterShape, stride, pad);
      return b.makeOutput(a.filterShape, 'float32', undefined, dw);
    },
  });
}

const uniform = (shape: number[], fanIn: number) => tf.variable(tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn)));

function build(layers: Layer[]): Params {
  return layers.map((l) => {
    switch (l.op) {
      case 'conv2d':
        return { kind: l.op, vars: [uniform([l.kernel, l.kernel, l.in, l.out], l.in * l.kernel * l.kernel), uniform([l.out], l.in * l.kernel * l.kernel)] };
      case 'linear':
        return { kind: l.op, vars: [uniform([l.in, l.out], l.in), uniform([l.out], l.in)] };
      case 'batchNorm':
        return { kind: l.op, vars: [tf.variable(tf.ones([l.features])), tf.variable(tf.zeros([l.features]))], stats: [tf.variable(tf.zeros([l.features]), false), tf.variable(tf.ones([l.features]), false)] };
      default:
        return { kind: l.op, vars: [] };
    }
  });
}

/**
 * conv2d (stride 1) whose weight gradient is itself a convolution, so it runs on the backend's own
 * conv kernel: dW[i, j, c, k] = Σ_{n,y,x} x[n, y+i−p, x+j−p, c] · dy[n, y, x, k] is a conv of x
 * seen as [C, H, W, N] (channels as the batch, the batch as channels) with dy seen as a filter
 * [OH, OW, N, K]; its output [C, KH, KW, K] transposed is dW. The input gradient is
 * conv2dTranspose (Conv2DBackpropInput, which TF.js wasm has).
 */
function conv2dConvGrad(x: tf.Tensor4D, w: tf.Tensor4D, pad: number): tf.Tensor4D {
  const padding = pad === 0 ? 'valid' : pad;
  const f = tf.customGrad(((xs: tf.Tensor, ws: tf.Tensor, save: tf.GradSaveFunc) => {
    const [xv, wv] = [xs as tf.Tensor4D, ws as tf.Tensor4D];
    save([xv, wv]);
    return {
      value: tf.conv2d(xv, wv, 1, padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs2, ws2] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dy4 = dy as tf.Tensor4D;
        const dx = tf.conv2dTranspose(dy4, ws2, xs2.shape, 1, padding);
        const xT = tf.transpose(xs2, [3, 1, 2, 0]);
        const dyT = tf.transpose(dy4, [1, 2, 0, 3]);
        const dw = tf.transpose(tf.conv2d(xT, dyT, 1, padding), [1, 2, 0, 3]);
        return [dx, dw];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, w) as tf.Tensor4D;
}

function forward(layers: Layer[], params: Params, x: tf.Tensor, training: boolean, convGrad = false): tf.Tensor {
  let h = x;
  layers.forEach((l, i) => {
    const p = params[i]!;
    switch (l.op) {
      case 'conv2d':
        h = tf.add(
          convGrad ? conv2dConvGrad(h as tf.Tensor4D, p.vars[0] as tf.Tensor4D, l.padding) : tf.conv2d(h as tf.Tensor4D, p.vars[0] as tf.Tensor4D, 1, l.padding === 0 ? 'valid' : l.padding),
          p.vars[1]!,
        );
        break;
      case 'linear':
        h = tf.add(tf.matMul(h as tf.Tensor2D, p.vars[0] as tf.Tensor2D), p.vars[1]!);
        break;
      case 'batchNorm': {
        const axes = h.rank === 4 ? [0, 1, 2] : [0];
        const [rm, rv] = p.stats!;
        if (training) {
          const { mean, variance } = tf.moments(h, axes);
          // Running statistics as PyTorch keeps them (momentum 0.1, unbiased variance).
          const count = h.size / l.features;
          rm!.assign(tf.add(tf.mul(rm!, 0.9), tf.mul(mean, 0.1)));
          rv!.assign(tf.add(tf.mul(rv!, 0.9), tf.mul(variance, 0.1 * count / (count - 1))));
          h = tf.batchNorm(h, mean, variance, p.vars[1]!, p.vars[0]!, 1e-5);
        } else {
          h = tf.batchNorm(h, rm!, rv!, p.vars[1]!, p.vars[0]!, 1e-5);
        }
        break;
      }
      case 'relu':
        h = tf.relu(h);
        break;
      case 'maxPool2d':
        h = tf.maxPool(h as tf.Tensor4D, l.kernel, l.kernel, 'valid');
        break;
      case 'avgPool2d':
        h = tf.avgPool(h as tf.Tensor4D, l.kernel, l.kernel, 'valid');
        break;
      case 'flatten':
        h = tf.reshape(h, [h.shape[0]!, -1]);
        break;
      case 'dropout':
        if (training) h = tf.dropout(h, l.p);
        break;
    }
  });
  return h;
}

function optimizer(o: Optimizer): tf.Optimizer {
  if (o.type === 'sgd') return o.momentum ? tf.train.momentum(o.lr, o.momentum, o.nesterov) : tf.train.sgd(o.lr);
  return tf.train.adam(o.lr, o.betas[0], o.betas[1], o.eps);
}

/** NCHW file data to NHWC. */
function images(data: Float32Array, n: number, [c, h, w]: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, c!, h!, w!]), [0, 2, 3, 1]));
}

await main(async (job: PeerJob) => {
  const backend = String(job.options.backend ?? 'cpu');
  const hasConv = job.layers.some((l) => l.op === 'conv2d');
  const notes: string[] = [];
  if (backend === 'wasm') {
    setWasmPaths(`${dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'))}/dist/`);
    if (hasConv && job.options.addFilterGrad) {
      registerFilterGrad();
      notes.push('Conv2DBackpropFilter added in plain JS by kiln bench (TF.js wasm has none)');
    }
    if (hasConv && job.options.convGrad) notes.push('conv weight gradient computed as a convolution on TF.js\'s own wasm kernels (tf.customGrad), as TF.js wasm has no Conv2DBackpropFilter');
  }
  progress(`starting the ${backend} backend`);
  if (!(await tf.setBackend(backend))) throw new Error(`the TF.js ${backend} backend did not start`);
  await tf.ready();
  const t0 = performance.now();
  const params = build(job.layers);
  const opt = optimizer(job.optimizer);
  const trainable = params.flatMap((p) => p.vars);
  const paramCount = trainable.reduce((s, v) => s + v.size, 0);
  const x = images(readF32(job.data.x), job.batchSize, job.input);
  const y = tf.oneHot(tf.tensor1d(readF32(job.data.y), 'int32'), job.classes);
  const xi = images(readF32(job.data.xi), job.inferBatch, job.input);
  const setupSeconds = (performance.now() - t0) / 1000;
  if (job.optimizer.weightDecay) notes.push('weight decay left out (the TF.js optimizers have none)');

  const step = () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(job.layers, params, x, true, job.options.convGrad === true)) as tf.Scalar, true, trainable)!;
    loss.dataSync();
    loss.dispose();
  };
  // As shipped, TF.js wasm cannot train a conv net: the first step fails. Say why, and still measure inference.
  let train: { first: number; times: number[] } = { first: NaN, times: [] };
  try {
    train = await timeLoop(job, 'training step', step);
  } catch (e) {
    notes.push(`cannot train: ${(e as Error).message.split('\n')[0]}`);
  }
  const infer = await timeLoop({ warmup: 1, steps: Math.min(job.steps, 10), seconds: job.seconds / 2 }, 'inference batch', () => {
    tf.tidy(() => forward(job.layers, params, xi, false)).dataSync();
  });
  return {
    threads: 1,
    setupSeconds,
    firstStepSeconds: train.first,
    trainSeconds: train.times,
    inferSeconds: infer.times,
    paramCount,
    version: tf.version.tfjs,
    ...(notes.length ? { note: notes.join('; ') } : {}),
  };
});
