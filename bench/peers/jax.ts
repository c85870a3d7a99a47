/**
 * jax-js peer: the model as a pure function of a parameter tree, the whole training step
 * (`valueAndGrad` of the loss, then the Adam or SGD-momentum update written out as in
 * torch.optim) under one `jit`, on jax-js's wasm backend. Layouts are PyTorch's (NCHW, OIHW);
 * pooling is a reshape and a reduction (every pooled size here is even).
 *
 * What it needed: jax-js runs its wasm kernels on a pool of Web Workers when `Worker` and
 * SharedArrayBuffer exist. Node has neither a global `Worker` nor blob-URL workers, so by default
 * it runs single-threaded. With `workers: N` this harness installs a global `Worker` built on
 * worker_threads (the worker source comes from the blob URL via `buffer.resolveObjectURL`) and a
 * `navigator.hardwareConcurrency` of N, which sizes the pool.
 */
import { resolveObjectURL } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker as NodeWorker } from 'node:worker_threads';
import { main, progress, readF32, timeLoop, type Layer, type PeerJob } from './protocol.ts';

/** A Web Worker on worker_threads: enough of the API for jax-js's pool (onmessage, onerror, postMessage, terminate). */
class WebWorker {
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onerror: ((e: { message: string }) => void) | null = null;
  private readonly w: NodeWorker;
  constructor(url: string | URL) {
    // The worker script arrives as the first message; messages before it wait in a queue.
    const bootstrap = `
      const { parentPort } = require('node:worker_threads');
      globalThis.self = globalThis;
      globalThis.postMessage = (m) => parentPort.postMessage(m);
      let pending = [];
      parentPort.on('message', (m) => {
        if (pending) {
          if (m && typeof m === 'object' && '__workerSource' in m) {
            (0, eval)(m.__workerSource);
            const queued = pending;
            pending = null;
            for (const q of queued) self.onmessage({ data: q });
          } else pending.push(m);
          return;
        }
        self.onmessage({ data: m });
      });`;
    this.w = new NodeWorker(bootstrap, { eval: true });
    this.w.on('message', (data) => this.onmessage?.({ data }));
    this.w.on('error', (e) => this.onerror?.({ message: e.message }));
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`Worker: cannot resolve ${String(url)}`);
    void blob.text().then((src) => this.w.postMessage({ __workerSource: src }));
  }
  postMessage(m: unknown): void {
    this.w.postMessage(m);
  }
  terminate(): void {
    void this.w.terminate();
  }
}

await main(async (job: PeerJob) => {
  const workers = Number(job.options.workers ?? 0);
  if (workers > 0) {
    (globalThis as Record<string, unknown>).Worker = WebWorker;
    Object.defineProperty(globalThis, 'navigator', { value: { hardwareConcurrency: workers }, configurable: true });
  }
  // Imported only now: jax-js decides on its worker pool when its wasm backend starts.
  const jax = await import('@jax-js/jax');
  const { numpy: np, nn, lax, random, tree, jit, valueAndGrad, init, defaultDevice } = jax;
  type A = InstanceType<typeof jax.Array>;
  progress('starting the wasm backend');
  await init('wasm');
  defaultDevice('wasm');

  const t0 = performance.now();
  const { layers, batchSize: B } = job;
  let key = random.key(0);
  const nextKey = () => {
    const [a, b] = random.split(key, 2) as unknown as [A, A];
    key = a;
    return b;
  };
  const uniform = (shape: number[], fanIn: number): A => random.uniform(nextKey(), shape, { minval: -1 / Math.sqrt(fanIn), maxval: 1 / Math.sqrt(fanIn) });
  type Params = Record<string, A>[];
  // tree.map over parameter lists (its generic signature does not infer through Params).
  const tmap = tree.map as unknown as (fn: (...a: A[]) => A, t: Params, ...rest: Params[]) => Params;
  const params = layers.map((l): Record<string, A> => {
    if (l.op === 'conv2d') return { w: uniform([l.out, l.in, l.kernel, l.kernel], l.in * l.kernel * l.kernel), b: uniform([l.out], l.in * l.kernel * l.kernel) };
    if (l.op === 'linear') return { w: uniform([l.in, l.out], l.in), b: uniform([l.out], l.in) };
    if (l.op === 'batchNorm') return { g: np.ones([l.features]), beta: np.zeros([l.features]) };
    return {};
  });
  const stats = layers.map((l): Record<string, A> => (l.op === 'batchNorm' ? { mean: np.zeros([l.features]), var: np.ones([l.features]) } : {}));
  const paramCount = tree.leaves(params).reduce((s, a) => s + (a as A).size, 0);

  /** The forward pass; in training also the new batch-norm running statistics. Owns every argument. */
  const forward = (p: Params, st: Params, x: A, dropKey: A, training: boolean): [A, Params] => {
    let h = x;
    const newStats: Params = [];
    let keyUsed = false;
    layers.forEach((l: Layer, i) => {
      const q = p[i]!;
      const s = st[i]!;
      switch (l.op) {
        case 'conv2d': {
          const pad: [number, number][] = [[l.padding, l.padding], [l.padding, l.padding]];
          h = lax.conv(h, q.w!, [1, 1], l.padding === 0 ? 'VALID' : pad).add(q.b!.reshape([1, l.out, 1, 1]));
          break;
        }
        case 'linear':
          h = np.matmul(h, q.w!).add(q.b!);
          break;
        case 'batchNorm': {
          const conv = h.ndim === 4;
          const axes = conv ? [0, 2, 3] : [0];
          const bshape = conv ? [1, l.features, 1, 1] : [1, l.features];
          let mean: A;
          let variance: A;
          if (training) {
            const count = h.size / l.features;
            mean = np.mean(h.ref, axes, { keepdims: true });
            variance = np.mean(np.square(h.ref.sub(mean.ref)), axes, { keepdims: true });
            // PyTorch's running statistics: momentum 0.1, unbiased variance.
            newStats.push({
              mean: s.mean!.mul(0.9).add(lax.stopGradient(mean.ref.reshape([l.features])).mul(0.1)),
              var: s.var!.mul(0.9).add(lax.stopGradient(variance.ref.reshape([l.features])).mul((0.1 * count) / (count - 1))),
            });
          } else {
            mean = s.mean!.reshape(bshape);
            variance = s.var!.reshape(bshape);
            newStats.push({});
          }
          h = h.sub(mean).div(np.sqrt(variance.add(1e-5))).mul(q.g!.reshape(bshape)).add(q.beta!.reshape(bshape));
          return;
        }
        case 'relu':
          h = nn.relu(h);
          break;
        case 'maxPool2d':
        case 'avgPool2d': {
          const [n, c, hh, ww] = h.shape as [number, number, number, number];
          const k = l.kernel;
          const r = h.reshape([n, c, hh / k, k, ww / k, k]);
          h = l.op === 'maxPool2d' ? np.max(r, [3, 5]) : np.mean(r, [3, 5]);
          break;
        }
        case 'flatten':
          h = h.reshape([h.shape[0]!, -1]);
          break;
        case 'dropout':
          if (training) {
            if (keyUsed) throw new Error('one dropout layer per model in this harness');
            keyUsed = true;
            const keep = random.bernoulli(dropKey, 1 - l.p, h.shape as number[]).astype(np.float32);
            h = h.mul(keep).mul(1 / (1 - l.p));
          }
          break;
      }
      newStats.push({});
      tree.dispose(s);
    });
    if (!keyUsed) dropKey.dispose();
    return [h, newStats];
  };

  const lossFn = (p: Params, st: Params, x: A, onehot: A, dropKey: A): [A, Params] => {
    const [logits, newStats] = forward(p, st, x, dropKey, true);
    const loss = nn.logSoftmax(logits, -1).mul(onehot).sum().mul(-1 / B);
    return [loss, newStats];
  };

  const o = job.optimizer;
  if (o.weightDecay) throw new Error('weight decay is not written out in this harness');
  type Step = [A, Params, Params, Params, Params];
  const step = jit((p: Params, st: Params, m: Params, v: Params, x: A, onehot: A, dropKey: A, bc1: A, bc2: A): Step => {
    const [[loss, newStats], grads] = valueAndGrad(lossFn, { hasAux: true })(tree.ref(p), st, x, onehot, dropKey);
    if (o.type === 'sgd') {
      // torch.optim.SGD: buf = momentum·buf + g (buf = g on the first step: zeros make it so); p -= lr·buf.
      const buf = tmap((b, g) => b!.mul(o.momentum).add(g!), m, grads as unknown as Params);
      const np_ = tmap((w, b) => w!.sub(b!.mul(o.lr)), p, tree.ref(buf));
      bc1.dispose();
      bc2.dispose();
      return [loss, np_, newStats, buf, v];
    }
    const [b1, b2] = o.betas;
    const g2 = tree.ref(grads as unknown as Params);
    const m2 = tmap((a, g) => a!.mul(b1).add(g!.mul(1 - b1)), m, grads as unknown as Params);
    const v2 = tmap((a, g) => a!.mul(b2).add(np.square(g!).mul(1 - b2)), v, g2);
    const c1 = tmap(() => bc1.ref, m2);
    const c2 = tmap(() => bc2.ref, m2);
    bc1.dispose();
    bc2.dispose();
    const p2 = tmap((w, mm, vv, k1, k2) => w!.sub(mm!.div(k1!).mul(o.lr).div(np.sqrt(vv!.div(k2!)).add(o.eps))), p, tree.ref(m2), tree.ref(v2), c1, c2);
    return [loss, p2, newStats, m2, v2];
  });
  const evalStep = jit((p: Params, st: Params, x: A): A => forward(p, st, x, random.key(0), false)[0]);

  const x = np.array(readF32(job.data.x)).reshape([B, ...job.input]);
  const labels = readF32(job.data.y);
  const oh = new Float32Array(B * job.classes);
  labels.forEach((c, i) => (oh[i * job.classes + c] = 1));
  const onehot = np.array(oh).reshape([B, job.classes]);
  const xi = np.array(readF32(job.data.xi)).reshape([job.inferBatch, ...job.input]);
  let state = { p: params, st: stats, m: tmap((a) => np.zerosLike(a!.ref), params), v: tmap((a) => np.zerosLike(a!.ref), params) };
  const setupSeconds = (performance.now() - t0) / 1000;

  const train = await timeLoop(job, 'training step', async (i) => {
    const t = i + 1;
    const [b1, b2] = o.type === 'sgd' ? [0, 0] : o.betas;
    const [loss, p, st, m, v] = step(state.p, state.st, state.m, state.v, x.ref, onehot.ref, random.key(i + 1), np.array([1 - Math.pow(b1, t)]), np.array([1 - Math.pow(b2, t)]));
    state = { p, st, m, v };
    const l = (await loss.data())[0]!;
    if (!Number.isFinite(l)) throw new Error(`the loss became ${l} at step ${i}`);
  });
  const infer = await timeLoop({ warmup: 1, steps: Math.min(job.steps, 10), seconds: job.seconds / 2 }, 'inference batch', async () => {
    const logits = evalStep(tree.ref(state.p), tree.ref(state.st), xi.ref);
    await logits.data();
  });
  return {
    threads: workers > 0 ? workers : 1,
    setupSeconds,
    firstStepSeconds: train.first,
    trainSeconds: train.times,
    inferSeconds: infer.times,
    paramCount,
    version: JSON.parse(readFileSync(join(dirname(createRequire(import.meta.url).resolve('@jax-js/jax')), '..', 'package.json'), 'utf8')).version as string,
  };
});
