/**
 * worker.js of a standalone bundle's page: the model, in a dedicated module worker. The wasm
 * backend's calling thread blocks in Atomics.wait while its threads run a step, which a page's
 * main thread may not do; here it may (and the wasm threads are workers this worker spawns).
 * app.ts drives it with the messages of protocol.ts.
 *
 * Every import of ../index.ts becomes an import of ./kiln-runtime.mjs in the built worker.js.
 */
import { bundledDataset, datasetFromFiles, loadBundle, runSteps, type Dataset, type KilnModel } from '../index.ts';
import type { BackendChoice, BackendName, BundleInfo, FromWorker, PageError, TestDigits, ToWorker } from './protocol.ts';

interface WorkerScope {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  onunhandledrejection: ((e: PromiseRejectionEvent) => void) | null;
  postMessage(m: FromWorker, transfer?: Transferable[]): void;
  location: { href: string };
  crossOriginIsolated?: boolean;
  navigator: Navigator;
}
const scope = globalThis as unknown as WorkerScope;

type Bundle = Awaited<ReturnType<typeof loadBundle>>;

/** The test digits the page shows: this many, spread evenly over the test set. */
const DIGITS = 24;
/**
 * Progress messages at most this often (ms): the page repaints from them. On a machine whose
 * cores all run wasm threads every repaint stalls a barrier: 20 a second cost a quarter of the
 * training speed on 2 cores (0.75× Node's), 4 a second a few percent (bench/standalone-browser.ts).
 */
const PROGRESS_MS = 250;

let bundle: Bundle | undefined;
let model: KilnModel | undefined;
let data: Dataset | undefined;
let digitIndex: number[] = [];
let training = false;
let stopAsked = false;
/** Epochs whose end has been evaluated (the trainer's onEpochEnd, or ours after an interrupt). */
let evaluatedEpochs = 0;
/** Predictions asked for while training: answered between steps (see train()). */
const pendingPredicts: { id: number; pixels: Float32Array }[] = [];

const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

function asPageError(e: unknown): PageError {
  const err = e as { message?: unknown; hint?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return typeof err?.hint === 'string' ? { message, hint: err.hint } : { message };
}

const fail = (e: unknown, fatal = false) => post({ type: 'error', error: asPageError(e), fatal });

/** Backend operations one at a time (opening, predicting, saving): the backends are not reentrant. */
let lock: Promise<unknown> = Promise.resolve();
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const run = lock.then(fn, fn);
  lock = run.catch(() => undefined);
  return run;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

async function probeWebGpu(): Promise<{ usable: boolean; why: string; software?: boolean }> {
  const gpu = scope.navigator.gpu as GPU | undefined;
  if (!gpu) return { usable: false, why: 'this browser has no WebGPU in workers (navigator.gpu is undefined)' };
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { usable: false, why: 'WebGPU offers no adapter here (on Linux, Chromium needs --enable-unsafe-webgpu)' };
    const i = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const words = [i.device, i.vendor, i.architecture, i.description].filter((s) => s).join(' ');
    // As the runtime's isSoftware (webgpu/gpu.ts): Chromium's SwiftShader is vendor 'google',
    // architecture 'swiftshader', a fallback adapter.
    const software = i.isFallbackAdapter === true || SOFTWARE.test(`${i.description} ${i.device} ${i.vendor} ${i.architecture}`);
    return { usable: true, why: words || 'WebGPU adapter', software };
  } catch (e) {
    return { usable: false, why: `WebGPU failed: ${(e as Error).message}` };
  }
}

async function start(): Promise<void> {
  try {
    bundle = await loadBundle(new URL('./', scope.location.href));
  } catch (e) {
    fail(e, true);
    return;
  }
  const m = bundle.manifest;
  const backends: BackendChoice[] = [];
  if (m.wasm) {
    const simd = typeof WebAssembly === 'object' && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]));
    backends.push(simd ? { name: 'wasm', usable: true, why: 'WebAssembly SIMD on the CPU' } : { name: 'wasm', usable: false, why: 'this browser has no WebAssembly SIMD' });
  }
  if (m.webgpu) backends.push({ name: 'webgpu', ...(await probeWebGpu()) });
  const usable = (n: BackendName) => backends.some((b) => b.name === n && b.usable);
  const gpu = backends.find((b) => b.name === 'webgpu');
  // The faster one that runs here: a hardware GPU beats the CPU; a software one (SwiftShader) does not.
  const defaultBackend: BackendName | null = usable('webgpu') && !gpu!.software ? 'webgpu' : usable('wasm') ? 'wasm' : usable('webgpu') ? 'webgpu' : null;
  const opt = m.training.optimizer as unknown as Record<string, unknown>;
  const info: BundleInfo = {
    name: m.name,
    file: m.file,
    kilnVersion: m.kilnVersion,
    input: [...m.input],
    classes: m.classes,
    batchSize: m.training.batchSize,
    epochs: m.training.epochs,
    optimizer: `${String(opt.type)} lr ${String(opt.lr)}`,
    normalize: m.training.normalize,
    data: m.data ? { name: m.data.name, trainCount: m.data.trainCount, testCount: m.data.testCount } : null,
    counts: { ...m.counts },
    backends,
    defaultBackend,
    threadCounts: m.wasm ? [...new Set(m.wasm.modules.map((x) => x.threads))].sort((a, b) => a - b) : [],
    crossOriginIsolated: scope.crossOriginIsolated === true,
    cores: scope.navigator.hardwareConcurrency ?? 1,
  };
  post({ type: 'info', info });
  if (m.data) {
    try {
      setData(await bundledDataset(bundle));
      // The model may have opened first: its digits wait for the data.
      await exclusive(() => predictDigits('initial weights (untrained)'));
    } catch (e) {
      fail(e, true);
    }
  }
}

function setData(d: Dataset): void {
  const m = bundle!.manifest;
  const per = m.input.reduce((a, b) => a * b, 1);
  const [channels, rows, cols] = d.imageShape;
  // The whole shape, as kiln train's check: 3×8×8 colour images are not a 1×8×24 model's input,
  // though they hold as many pixels.
  if (d.imageShape.join() !== m.input.join()) {
    throw Object.assign(new Error(`the dataset's images have shape [${d.imageShape.join(', ')}]; this model takes inputs of shape [${m.input.join(', ')}]`), {
      hint: 'give a dataset of the shape the model was compiled for (a 4-d IDX file [N, C, H, W] holds colour images, a 3-d one [N, H, W] grey ones)',
    });
  }
  const want = runSteps(d.train.count, d.test.count, m.training.batchSize, m.training.evalBatchSize);
  const missing = want.filter(([stage, b]) => !m.steps.some((s) => s.stage === stage && s.batchSize === b));
  if (missing.length) {
    throw Object.assign(new Error(`this bundle was compiled for ${m.counts.train.toLocaleString('en-US')} training and ${m.counts.test.toLocaleString('en-US')} test images; the files hold ${d.train.count.toLocaleString('en-US')} and ${d.test.count.toLocaleString('en-US')}, whose short last batches it has no steps for`), {
      hint: 'compile the bundle with --data naming this dataset, or use a dataset of the same size (Fashion-MNIST and KMNIST have MNIST\'s)',
    });
  }
  data = d;
  const stride = Math.max(1, Math.floor(d.test.count / DIGITS));
  digitIndex = Array.from({ length: Math.min(DIGITS, d.test.count) }, (_, i) => i * stride);
  const pixels = new Uint8Array(digitIndex.length * per);
  digitIndex.forEach((k, i) => pixels.set(d.test.images.subarray(k * per, (k + 1) * per), i * per));
  const digits: TestDigits = { pixels, labels: digitIndex.map((k) => d.test.labels[k]!), channels, rows, cols };
  post({ type: 'data', name: d.name, trainCount: d.train.count, testCount: d.test.count, digits }, [pixels.buffer]);
}

/** Pixels 0..255 of `n` examples (CHW) → the model's normalised input, each channel with its mean and std. */
function normalise(pixels: ArrayLike<number>): Float32Array {
  const { mean, std } = bundle!.manifest.training.normalize;
  const plane = bundle!.manifest.input.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(pixels.length);
  for (let i = 0; i < x.length; i++) {
    const c = mean.length === 1 ? 0 : Math.floor(i / plane) % mean.length;
    x[i] = (pixels[i]! / 255 - mean[c]!) / std[c]!;
  }
  return x;
}

async function predictDigits(after: string): Promise<void> {
  if (!model || !data || !digitIndex.length) return;
  const per = bundle!.manifest.input.reduce((a, b) => a * b, 1);
  const raw = new Uint8Array(digitIndex.length * per);
  digitIndex.forEach((k, i) => raw.set(data!.test.images.subarray(k * per, (k + 1) * per), i * per));
  const probs = await model.predict(normalise(raw));
  const c = bundle!.manifest.classes;
  const predicted = digitIndex.map((_, i) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (probs[i * c + k]! > probs[i * c + best]!) best = k;
    return best;
  });
  post({ type: 'digits', predicted, after });
}

async function predict(id: number, pixels: Float32Array): Promise<void> {
  if (!model) {
    post({ type: 'prediction', id, probs: [] });
    return;
  }
  try {
    post({ type: 'prediction', id, probs: Array.from(await model.predict(normalise(pixels))) });
  } catch (e) {
    post({ type: 'prediction', id, probs: [] });
    fail(e);
  }
}

async function open(backend: BackendName, threads: number | undefined): Promise<void> {
  const b = bundle!;
  model?.dispose();
  model = undefined;
  evaluatedEpochs = 0;
  const m = await b.open({ backend, threads });
  model = m;
  const isolated = scope.crossOriginIsolated === true;
  const counts = b.manifest.wasm ? [...new Set(b.manifest.wasm.modules.map((x) => x.threads))].sort((x, y) => x - y) : [];
  const cores = scope.navigator.hardwareConcurrency ?? 1;
  const software = backend === 'webgpu' && /software rasterizer|swiftshader/i.test(m.description);
  let why: string;
  if (backend === 'webgpu') {
    why = software
      ? 'the steps run as WGSL compute shaders on a software adapter (SwiftShader, on the CPU): correct, but slower than wasm on this machine'
      : 'the steps run as WGSL compute shaders on the GPU';
  } else if (!isolated) {
    why = `1 thread: this page is not cross-origin isolated, so it has no SharedArrayBuffer for wasm threads; serve the folder with \`kiln serve DIR\` (it sends the COOP/COEP headers) to use ${counts.filter((c) => c > 1).length ? `up to ${Math.min(counts.at(-1)!, Math.max(1, cores))}` : 'more'} threads`;
  } else if (threads !== undefined) {
    why = `${m.threads} thread${m.threads > 1 ? 's' : ''}, as chosen (the bundle holds ${counts.join(', ')}; this machine has ${cores} core${cores > 1 ? 's' : ''}); the page is cross-origin isolated`;
  } else {
    why = `${m.threads} thread${m.threads > 1 ? 's' : ''}: the most this bundle holds (${counts.join(', ')}) that fit this machine's ${cores} core${cores > 1 ? 's' : ''}; the page is cross-origin isolated`;
  }
  post({ type: 'opened', backend, threads: m.threads, description: m.description, why, software });
  await predictDigits('initial weights (untrained)');
}

async function answerPending(): Promise<void> {
  while (pendingPredicts.length) {
    const p = pendingPredicts.shift()!;
    await predict(p.id, p.pixels);
  }
}

/**
 * Trains `epochs` more epochs (the current one counts when a run stopped inside it), at most up
 * to `maxSteps` steps in total. model.train runs to the end of one epoch at a time, so that the
 * test digits are predicted on an idle backend between epochs; a prediction asked for meanwhile
 * interrupts it after a step (stopRequested), is answered, and the run continues from the
 * model's position: the trainer is driven by the position alone, so the steps and their losses
 * are those of one uninterrupted run, which is `node train.mjs`'s.
 */
async function train(epochs: number, maxSteps: number | undefined): Promise<void> {
  const m = model;
  const d = data;
  if (!m || !d) throw new Error(!m ? 'no model is open' : 'no dataset yet');
  const t0 = performance.now();
  const startStep = m.position.step;
  const target = m.position.epoch + epochs;
  const batches = Math.ceil(d.train.count / m.manifest.training.batchSize);
  const totalSteps = Math.min(maxSteps ?? Infinity, target * batches);
  let buffer: number[] = [];
  let firstStep = m.position.step;
  let lastPost = 0;
  let last: { epoch: number; batch: number; imagesPerSec: number; runningAccuracy: number } = { epoch: m.position.epoch, batch: m.position.batch, imagesPerSec: 0, runningAccuracy: 0 };
  let epochLoss = 0;
  let epochSeen = 0;
  const flush = () => {
    post({ type: 'progress', firstStep, losses: buffer, step: firstStep + buffer.length, epoch: last.epoch, batch: last.batch, batches, totalSteps, imagesPerSec: last.imagesPerSec, runningAccuracy: last.runningAccuracy });
    firstStep += buffer.length;
    buffer = [];
    lastPost = performance.now();
  };
  stopAsked = false;
  for (;;) {
    if (m.position.epoch >= target || (maxSteps !== undefined && m.position.step >= maxSteps)) break;
    const before = m.position.step;
    const r = await m.train(d, {
      epochs: m.position.epoch + 1,
      maxSteps,
      onEpochStart: (_epoch, _batches, firstBatch) => {
        if (firstBatch === 0) epochLoss = epochSeen = 0;
      },
      onStep: (s) => {
        buffer.push(s.loss);
        epochLoss += s.loss;
        epochSeen++;
        last = { epoch: s.epoch, batch: s.batch, imagesPerSec: s.imagesPerSec, runningAccuracy: s.runningAccuracy };
        if (performance.now() - lastPost >= PROGRESS_MS) flush();
      },
      onEpochEnd: (e) => {
        flush();
        const partial = last.batch < batches;
        if (!partial) evaluatedEpochs = e.epoch + 1;
        post({ type: 'epoch', epoch: e.epoch, trainLoss: e.trainLoss, testLoss: e.testLoss, testAccuracy: e.testAccuracy, seconds: e.seconds, partial });
      },
      stopRequested: () => stopAsked || pendingPredicts.length > 0,
    });
    flush();
    // An interrupt on an epoch's last batch skips the trainer's evaluation of that epoch: ours.
    if (r.interrupted && m.position.batch === 0 && m.position.epoch > evaluatedEpochs) {
      const ev = await m.evaluate(d.test);
      evaluatedEpochs = m.position.epoch;
      post({ type: 'epoch', epoch: m.position.epoch - 1, trainLoss: epochSeen ? epochLoss / epochSeen : NaN, testLoss: ev.loss, testAccuracy: ev.accuracy, seconds: NaN, partial: false });
      await predictDigits(`epoch ${m.position.epoch}`);
    }
    await answerPending();
    if (!r.interrupted) await predictDigits(m.position.batch === 0 ? `epoch ${m.position.epoch}` : `step ${m.position.step}`);
    if (stopAsked) break;
    if (!r.interrupted && m.position.step === before) break;
  }
  if (stopAsked) await predictDigits(`step ${m.position.step} (stopped)`);
  post({ type: 'trained', stopped: stopAsked, steps: m.position.step - startStep, epoch: m.position.epoch, seconds: (performance.now() - t0) / 1000 });
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'open':
      if (training) return fail(new Error('training is running: stop it before switching the backend'));
      if (!bundle) return;
      return exclusive(() => open(msg.backend, msg.threads)).catch((e) => fail(e));
    case 'data':
      if (training) return fail(new Error('training is running: stop it before loading another dataset'));
      try {
        setData(await datasetFromFiles('IDX files', msg.files, msg.names, bundle!.manifest.training.normalize));
        await exclusive(() => predictDigits('initial weights (untrained)'));
      } catch (e) {
        fail(e);
      }
      return;
    case 'train':
      if (training) return;
      training = true;
      try {
        await exclusive(() => train(msg.epochs, msg.maxSteps));
      } catch (e) {
        fail(e);
        post({ type: 'trained', stopped: true, steps: 0, epoch: model?.position.epoch ?? 0, seconds: 0 });
      } finally {
        training = false;
        pendingPredicts.length = 0;
      }
      return;
    case 'stop':
      stopAsked = true;
      return;
    case 'predict':
      if (training) pendingPredicts.push({ id: msg.id, pixels: msg.pixels });
      else await exclusive(() => predict(msg.id, msg.pixels));
      return;
    case 'saveWeights':
      return exclusive(async () => {
        if (!model) throw new Error('no model is open');
        const bytes = await model.saveWeights();
        post({ type: 'weights', bytes }, [bytes.buffer]);
      }).catch((e) => fail(e));
    case 'loadWeights':
      if (training) return fail(new Error('training is running: stop it before loading weights'));
      return exclusive(async () => {
        if (!model) throw new Error('no model is open');
        model.loadWeights(msg.bytes, msg.name);
        post({ type: 'weightsLoaded', name: msg.name });
        await predictDigits(`weights from ${msg.name}`);
      }).catch((e) => fail(e));
  }
}

scope.onmessage = (e) => void handle(e.data);
scope.onunhandledrejection = (e) => fail(e.reason);
void start();
