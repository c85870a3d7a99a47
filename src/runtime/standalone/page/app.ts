/**
 * app.js of a standalone bundle's page (index.html): the controls, the loss curve, the test images
 * and (for a model of MNIST's 28×28 digits) the drawing pad, on the main thread. The model runs in worker.js (worker.ts), which this
 * file talks to with the messages of protocol.ts; nothing here blocks.
 *
 * URL parameters (for links and tests): backend=wasm|webgpu, threads=N, epochs=N, maxSteps=N,
 * autostart=1. `window.kilnPage` exposes the page's state to a test (see KilnPage below).
 */
import type { BackendName, BundleInfo, FromWorker, PageError, TestDigits, ToWorker } from './protocol.ts';

type PageState = 'idle' | 'loading' | 'training' | 'done' | 'error';

/** What a test (or the console) reads and drives: `window.kilnPage`. */
interface KilnPage {
  state: PageState;
  /** Every step's loss, in order, since the model was opened. */
  losses: number[];
  /** The test evaluation after each epoch (1-based; a run stopped by maxSteps is evaluated too). */
  epochs: { epoch: number; testAccuracy: number; testLoss: number; trainLoss: number; steps: number; partial: boolean }[];
  backend?: BackendName;
  threads?: number;
  /** What runs the model, in words (the runtime's), and why that many threads. */
  description?: string;
  why?: string;
  crossOriginIsolated: boolean;
  error?: PageError;
  /** Training throughput the runtime measured (steps only), and the last run's wall time. */
  imagesPerSec?: number;
  trainSeconds?: number;
  /**
   * Class probabilities of a 28×28 image, pixels 0..255 row-major (white digit on black), as the
   * drawing pad asks them; rejected for a model whose input is not [1, 28, 28] (it has no pad).
   */
  predictDrawing(pixels: number[]): Promise<number[]>;
}

declare global {
  interface Window {
    kilnPage: KilnPage;
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html lacks #${id}`);
  return el as T;
};

const ui = {
  title: $('title'),
  subtitle: $('subtitle'),
  error: $('error'),
  errorMessage: $('error-message'),
  errorHint: $('error-hint'),
  errorClose: $<HTMLButtonElement>('error-close'),
  drop: $('data-drop'),
  dataFiles: $<HTMLInputElement>('data-files'),
  dataStatus: $('data-status'),
  backend: $<HTMLSelectElement>('backend'),
  threads: $<HTMLSelectElement>('threads'),
  epochs: $<HTMLInputElement>('epochs'),
  train: $<HTMLButtonElement>('train'),
  stop: $<HTMLButtonElement>('stop'),
  download: $<HTMLButtonElement>('download'),
  load: $<HTMLInputElement>('load'),
  loadLabel: $('load-label'),
  state: $('state'),
  runtimeDesc: $('runtime-desc'),
  runtimeWhy: $('runtime-why'),
  note: $('note'),
  statStep: $('stat-step'),
  statEpoch: $('stat-epoch'),
  statLoss: $('stat-loss'),
  statAcc: $('stat-acc'),
  statSpeed: $('stat-speed'),
  statTime: $('stat-time'),
  progress: $('progress-bar'),
  chart: $<HTMLCanvasElement>('loss-chart'),
  epochRows: $('epoch-rows'),
  pad: $<HTMLCanvasElement>('pad'),
  seen: $<HTMLCanvasElement>('seen'),
  clear: $<HTMLButtonElement>('clear'),
  bars: $('bars'),
  barsNote: $('bars-note'),
  layout: $('layout'),
  padOff: $('pad-off'),
  digits: $('digits'),
  digitsTitle: $('digits-title'),
  digitsAfter: $('digits-after'),
};

// ---- URL parameters ----

const params = new URLSearchParams(location.search);
/** Bad URL parameters, shown once the page is set up. */
const paramErrors: PageError[] = [];
function intParam(name: string): number | undefined {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    paramErrors.push({ message: `URL parameter ${name}=${v} is not a positive integer`, hint: `remove it, or give e.g. ${name}=2` });
    return undefined;
  }
  return n;
}
const wantBackend = ((): BackendName | undefined => {
  const v = params.get('backend');
  if (v === null || v === '') return undefined;
  if (v === 'wasm' || v === 'webgpu') return v;
  paramErrors.push({ message: `URL parameter backend=${v}: the backends are wasm and webgpu`, hint: 'remove it to use the faster one this browser runs' });
  return undefined;
})();
const wantThreads = intParam('threads');
const maxSteps = intParam('maxSteps');
const wantEpochs = intParam('epochs');
const autostart = params.get('autostart') === '1';

// ---- page state ----

let info: BundleInfo | undefined;
let opened = false;
let dataReady = false;
let training = false;
let fatal = false;
let autostarted = false;
let runStart = 0;
let planned = 0;
let smoothed: number[] = [];
let ema = 0;
let epochMarks: number[] = [];
let digits: TestDigits | undefined;
/** The drawing pad is on: the model takes MNIST's [1, 28, 28] (set from the bundle's info). */
let padOn = true;
let nextId = 1;
const waiting = new Map<number, (probs: number[]) => void>();

const page: KilnPage = {
  state: 'loading',
  losses: [],
  epochs: [],
  crossOriginIsolated: globalThis.crossOriginIsolated === true,
  predictDrawing: async (pixels) => {
    if (!padOn) throw new Error(`this model takes inputs of shape [${info!.input.join(', ')}], not 28×28 digits: its page has no drawing pad`);
    if (pixels.length !== 784) throw new Error(`predictDrawing takes 28×28 = 784 pixels, got ${pixels.length}`);
    const x = Float32Array.from(pixels);
    showSeen(x);
    const probs = await ask(x);
    showBars(probs);
    return probs;
  },
};
window.kilnPage = page;

function setState(s: PageState): void {
  page.state = s;
  ui.state.textContent = s === 'done' ? 'trained' : s;
  ui.state.className = `badge ${s}`;
  refreshControls();
}

function refreshControls(): void {
  const ready = !!info && !fatal;
  ui.backend.disabled = !ready || training;
  ui.threads.disabled = !ready || training || page.backend === 'webgpu' || !info?.threadCounts.length;
  ui.epochs.disabled = training;
  ui.train.disabled = !ready || !opened || !dataReady || training;
  ui.stop.disabled = !training;
  ui.download.disabled = !opened || training;
  ui.load.disabled = !opened || training;
  ui.loadLabel.classList.toggle('disabled', ui.load.disabled);
  ui.train.textContent = page.losses.length && !training ? 'Continue' : 'Train';
}

// ---- errors ----

/** Text with `code` spans, escaped. */
function withCode(el: HTMLElement, text: string): void {
  el.textContent = '';
  text.split('`').forEach((part, i) => {
    if (i % 2) {
      const c = document.createElement('code');
      c.textContent = part;
      el.append(c);
    } else el.append(part);
  });
}

function showError(e: PageError, isFatal = false): void {
  page.error = { ...e };
  withCode(ui.errorMessage, e.message);
  ui.errorHint.hidden = !e.hint;
  if (e.hint) {
    withCode(ui.errorHint, e.hint);
    const label = document.createElement('strong');
    label.textContent = 'hint: ';
    ui.errorHint.prepend(label);
  }
  ui.error.hidden = false;
  ui.errorClose.hidden = isFatal;
  if (isFatal) {
    fatal = true;
    if (!info) ui.title.textContent = 'This bundle cannot run';
    if (!opened) ui.runtimeDesc.textContent = 'no model';
  }
  setState('error');
}

function clearError(): void {
  ui.error.hidden = true;
  page.error = undefined;
}
ui.errorClose.onclick = () => {
  clearError();
  if (page.state === 'error') setState(opened ? (page.losses.length ? 'done' : 'idle') : 'loading');
};

function note(text: string): void {
  ui.note.textContent = text;
  ui.note.hidden = !text;
}

// ---- the worker ----

let worker: Worker | undefined;
function send(m: ToWorker, transfer: Transferable[] = []): void {
  worker?.postMessage(m, transfer);
}

function ask(pixels: Float32Array): Promise<number[]> {
  if (!opened) return Promise.reject(new Error('no model is open yet'));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, (probs) => (probs.length ? resolve(probs) : reject(new Error(page.error?.message ?? 'the prediction failed'))));
    send({ type: 'predict', id, pixels });
  });
}

function startWorker(): void {
  if (location.protocol === 'file:') {
    showError({ message: 'this page was opened from a file (file://): browsers do not run its worker and WebAssembly modules from there', hint: 'serve the folder with `kiln serve DIR` and open the address it prints' }, true);
    return;
  }
  if (typeof Worker !== 'function') {
    showError({ message: 'this browser has no Web Workers, which the model runs in' }, true);
    return;
  }
  worker = new Worker('worker.js', { type: 'module', name: 'kiln model' });
  worker.onmessage = (e: MessageEvent<FromWorker>) => onWorker(e.data);
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    showError(
      { message: `the model's worker failed${e.message ? `: ${e.message}` : ' to load'}`, hint: 'check that worker.js and kiln-runtime.mjs are in the folder and that it is served whole (`kiln serve DIR`)' },
      !opened,
    );
  };
}

function onWorker(m: FromWorker): void {
  switch (m.type) {
    case 'info':
      return onInfo(m.info);
    case 'data':
      onData(m.digits, m.name, m.trainCount, m.testCount);
      return;
    case 'opened':
      opened = true;
      page.backend = m.backend;
      page.threads = m.threads;
      page.description = m.description;
      page.why = m.why;
      ui.backend.value = m.backend;
      if (m.backend === 'wasm') ui.threads.value = String(m.threads);
      ui.runtimeDesc.textContent = m.description;
      withCode(ui.runtimeWhy, m.why);
      resetRun();
      if (!fatal) {
        clearError();
        setState('idle');
      }
      void repredict();
      maybeAutostart();
      return;
    case 'progress':
      onProgress(m);
      return;
    case 'epoch': {
      const row = { epoch: m.epoch + 1, testAccuracy: m.testAccuracy, testLoss: m.testLoss, trainLoss: m.trainLoss, steps: page.losses.length, partial: m.partial };
      page.epochs.push(row);
      if (!m.partial) epochMarks.push(page.losses.length);
      addEpochRow(row, m.seconds);
      scheduleChart();
      void repredict();
      return;
    }
    case 'digits':
      showDigitPredictions(m.predicted, m.after);
      return;
    case 'trained':
      training = false;
      page.trainSeconds = m.seconds;
      if (page.state === 'training') setState('done');
      else refreshControls();
      if (m.stopped && m.steps) note(`stopped after ${m.steps.toLocaleString('en-US')} steps; Continue resumes where it stopped`);
      ui.statTime.textContent = `${m.seconds.toFixed(1)} s`;
      void repredict();
      return;
    case 'prediction': {
      const done = waiting.get(m.id);
      waiting.delete(m.id);
      done?.(m.probs);
      return;
    }
    case 'weights': {
      const url = URL.createObjectURL(new Blob([m.bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `${info?.name ?? 'model'}.safetensors`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      note(`saved the weights as ${a.download} (${(m.bytes.length / 1024).toFixed(0)} KiB, a safetensors state_dict: loads with \`kiln train --init\` or PyTorch)`);
      return;
    }
    case 'weightsLoaded':
      note(`loaded the weights from ${m.name}`);
      void repredict();
      return;
    case 'error':
      // Fatal (the bundle or its data is broken): the controls stay off until a reload. A failed
      // open leaves the backend and threads selectors on, to try another.
      showError(m.error, m.fatal);
      return;
  }
}

// ---- bundle info, backends, threads ----

function onInfo(i: BundleInfo): void {
  info = i;
  document.title = `${i.name} · kiln`;
  ui.title.textContent = i.name;
  const data = i.data ? `${i.data.name.toUpperCase()} ${i.data.trainCount.toLocaleString('en-US')} + ${i.data.testCount.toLocaleString('en-US')} images` : 'no dataset in the bundle';
  ui.subtitle.textContent = `${i.file} · input ${i.input.join('×')} → ${i.classes} classes · batch ${i.batchSize} · ${i.optimizer} · ${data} · kiln ${i.kilnVersion}`;
  ui.epochs.value = String(wantEpochs ?? i.epochs);

  ui.backend.textContent = '';
  for (const b of i.backends) {
    const o = new Option(b.name === 'webgpu' && b.usable && b.software ? 'webgpu (software)' : b.name, b.name);
    o.disabled = !b.usable;
    o.title = b.why;
    ui.backend.append(o);
  }
  ui.threads.textContent = '';
  for (const t of i.threadCounts) {
    const o = new Option(String(t), String(t));
    o.disabled = t > 1 && !i.crossOriginIsolated;
    if (o.disabled) o.title = 'needs a cross-origin isolated page (kiln serve)';
    ui.threads.append(o);
  }
  if (!i.threadCounts.length) ui.threads.append(new Option('–', ''));
  const auto = i.threadCounts.filter((t) => t <= (i.crossOriginIsolated ? i.cores : 1)).at(-1) ?? i.threadCounts[0];
  ui.threads.value = String(wantThreads ?? auto ?? '');

  if (!i.data) {
    ui.drop.hidden = false;
    dataReady = false;
  }
  setPad(i.input);
  buildBars(i.classes);
  const backend = wantBackend ?? i.defaultBackend;
  if (!backend) {
    showError({ message: `this browser runs none of the bundle's backends: ${i.backends.map((b) => `${b.name}: ${b.why}`).join('; ')}`, hint: 'use a current Chrome, Edge or Firefox' }, true);
    return;
  }
  ui.backend.value = backend;
  open(backend, backend === 'wasm' ? wantThreads : undefined);
}

function open(backend: BackendName, threads?: number): void {
  opened = false;
  page.backend = backend;
  ui.runtimeDesc.textContent = `opening ${backend}…`;
  ui.runtimeWhy.textContent = '';
  setState('loading');
  send({ type: 'open', backend, threads });
}

ui.backend.onchange = () => open(ui.backend.value as BackendName, ui.backend.value === 'wasm' ? Number(ui.threads.value) || undefined : undefined);
ui.threads.onchange = () => open('wasm', Number(ui.threads.value));

function maybeAutostart(): void {
  if (autostart && !autostarted && opened && dataReady && !fatal && !page.error) {
    autostarted = true;
    startTraining();
  }
}

// ---- training ----

function resetRun(): void {
  page.losses = [];
  page.epochs = [];
  smoothed = [];
  ema = 0;
  epochMarks = [];
  planned = 0;
  ui.epochRows.innerHTML = '<tr class="empty"><td colspan="6">evaluated on the test set after each epoch</td></tr>';
  for (const el of [ui.statEpoch, ui.statLoss, ui.statAcc, ui.statSpeed, ui.statTime]) el.textContent = '–';
  ui.statStep.textContent = '0';
  ui.progress.style.width = '0';
  note('');
  scheduleChart();
}

function startTraining(): void {
  if (training || !opened || !dataReady) return;
  const epochs = Math.max(1, Math.floor(Number(ui.epochs.value) || 1));
  training = true;
  runStart = performance.now();
  note('');
  clearError();
  setState('training');
  send({ type: 'train', epochs, maxSteps });
}
ui.train.onclick = startTraining;
ui.stop.onclick = () => {
  send({ type: 'stop' });
  ui.stop.disabled = true;
};

const SMOOTHING = 0.95;
const fmt = (n: number, d = 4) => (Number.isFinite(n) ? n.toFixed(d) : '–');

function onProgress(m: Extract<FromWorker, { type: 'progress' }>): void {
  for (const loss of m.losses) {
    page.losses.push(loss);
    ema = SMOOTHING * ema + (1 - SMOOTHING) * loss;
    // Debiased, as TensorBoard's: the first steps are not pulled towards zero.
    smoothed.push(ema / (1 - SMOOTHING ** (smoothed.length + 1)));
  }
  planned = m.totalSteps;
  page.imagesPerSec = m.imagesPerSec;
  ui.statStep.textContent = `${m.step.toLocaleString('en-US')} / ${m.totalSteps.toLocaleString('en-US')}`;
  ui.statEpoch.textContent = `${m.epoch + 1} · ${m.batch}/${m.batches}`;
  ui.statLoss.textContent = fmt(smoothed.at(-1) ?? NaN);
  ui.statAcc.textContent = `${(m.runningAccuracy * 100).toFixed(1)}%`;
  ui.statSpeed.textContent = Math.round(m.imagesPerSec).toLocaleString('en-US');
  ui.statTime.textContent = `${((performance.now() - runStart) / 1000).toFixed(1)} s`;
  ui.progress.style.width = `${Math.min(100, (100 * m.step) / Math.max(1, m.totalSteps)).toFixed(2)}%`;
  scheduleChart();
}

function addEpochRow(r: KilnPage['epochs'][number], seconds: number): void {
  const empty = ui.epochRows.querySelector('tr.empty');
  empty?.remove();
  const tr = document.createElement('tr');
  const cells = [
    r.partial ? `${r.epoch} (partial)` : String(r.epoch),
    r.steps.toLocaleString('en-US'),
    fmt(r.trainLoss),
    fmt(r.testLoss),
    `${(r.testAccuracy * 100).toFixed(2)}%`,
    Number.isFinite(seconds) ? `${seconds.toFixed(1)} s` : '–',
  ];
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (i === 4) td.className = 'acc';
    tr.append(td);
  });
  ui.epochRows.append(tr);
}

// ---- the loss curve ----

let chartQueued = false;
function scheduleChart(): void {
  if (chartQueued) return;
  chartQueued = true;
  requestAnimationFrame(() => {
    chartQueued = false;
    drawChart();
  });
}
window.addEventListener('resize', scheduleChart);

function niceStep(span: number, ticks: number): number {
  const raw = span / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function drawChart(): void {
  const c = ui.chart;
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth;
  const h = c.clientHeight;
  if (!w || !h) return;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const L = 44;
  const R = 12;
  const T = 18;
  const B = 24;
  const pw = w - L - R;
  const ph = h - T - B;
  const losses = page.losses;
  const n = losses.length;
  const xmax = Math.max(n, planned, 10);
  let top = 0;
  for (const v of losses) if (Number.isFinite(v) && v > top) top = v;
  if (!top) top = 2.5;
  const ys = niceStep(top, 5);
  const ymax = Math.ceil(top / ys) * ys;
  const X = (step: number) => L + (step / xmax) * pw;
  const Y = (v: number) => T + ph * (1 - Math.min(v, ymax) / ymax);

  g.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  g.lineWidth = 1;
  g.strokeStyle = '#eceef1';
  g.fillStyle = '#6a717c';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let v = 0; v <= ymax + ys / 2; v += ys) {
    const y = Math.round(Y(v)) + 0.5;
    g.beginPath();
    g.moveTo(L, y);
    g.lineTo(L + pw, y);
    g.stroke();
    g.fillText(ys < 0.1 ? v.toFixed(2) : ys < 1 ? v.toFixed(1) : v.toFixed(0), L - 6, y);
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const xs = niceStep(xmax, 6);
  for (let s = 0; s <= xmax; s += xs) g.fillText(s.toLocaleString('en-US'), X(s), T + ph + 6);
  g.textAlign = 'left';
  g.textBaseline = 'bottom';
  g.fillText('loss', 4, T - 4);
  g.textBaseline = 'top';
  g.fillText('step', 4, T + ph + 6);

  g.strokeStyle = '#c3c8cf';
  g.setLineDash([4, 4]);
  epochMarks.forEach((s, i) => {
    const x = Math.round(X(s)) + 0.5;
    g.beginPath();
    g.moveTo(x, T);
    g.lineTo(x, T + ph);
    g.stroke();
    g.textAlign = 'right';
    g.textBaseline = 'top';
    g.fillText(`epoch ${i + 1}`, x - 4, T + 2);
  });
  g.setLineDash([]);

  if (!n) {
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillStyle = '#9aa1ab';
    g.font = '13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    g.fillText(opened ? 'press Train: the loss of every step is drawn here' : 'the loss of every step is drawn here', L + pw / 2, T + ph / 2);
    return;
  }
  g.fillStyle = 'rgba(232, 89, 12, 0.28)';
  const r = n > 4000 ? 1 : 1.5;
  for (let i = 0; i < n; i++) {
    const v = losses[i]!;
    if (Number.isFinite(v)) g.fillRect(X(i + 1) - r, Y(v) - r, 2 * r, 2 * r);
  }
  g.strokeStyle = '#e8590c';
  g.lineWidth = 2;
  g.lineJoin = 'round';
  g.beginPath();
  smoothed.forEach((v, i) => (i ? g.lineTo(X(i + 1), Y(v)) : g.moveTo(X(i + 1), Y(v))));
  g.stroke();

  // Legend, top right, under the axis caption.
  g.font = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  const lx = L + pw - 4;
  const ly = T + 12;
  g.fillStyle = '#1d2127';
  const last = `smoothed ${fmt(smoothed.at(-1)!)}`;
  g.fillText(last, lx, ly);
  const tw = g.measureText(last).width;
  g.strokeStyle = '#e8590c';
  g.beginPath();
  g.moveTo(lx - tw - 24, ly);
  g.lineTo(lx - tw - 6, ly);
  g.stroke();
  g.fillStyle = '#1d2127';
  g.fillText('each step', lx - tw - 36, ly);
  const tw2 = g.measureText('each step').width;
  g.fillStyle = 'rgba(232, 89, 12, 0.5)';
  g.fillRect(lx - tw - 36 - tw2 - 10, ly - 2, 4, 4);
}

// ---- test digits ----

/**
 * One test image, CHW pixels 0..255, into a canvas of its size: 3 channels as RGB, 1 as grey. Any
 * other count (2, or 4 and more) has no agreed mapping to colours, and a 4th channel is no more
 * an alpha than a 2nd is a green: the first channel is drawn grey, and the cell's title says so.
 */
function drawImage(ctx: CanvasRenderingContext2D, pixels: ArrayLike<number>, channels: number, w: number, h: number): void {
  const img = ctx.createImageData(w, h);
  const plane = w * h;
  const at = (c: number, i: number) => Math.max(0, Math.min(255, Math.round(pixels[c * plane + i]!)));
  for (let i = 0; i < plane; i++) {
    if (channels === 3) {
      img.data[4 * i] = at(0, i);
      img.data[4 * i + 1] = at(1, i);
      img.data[4 * i + 2] = at(2, i);
    } else img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = at(0, i);
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function onData(d: TestDigits, name: string, trainCount: number, testCount: number): void {
  dataReady = true;
  digits = d;
  if (info && !info.data) {
    ui.dataStatus.textContent = `${name}: ${trainCount.toLocaleString('en-US')} training and ${testCount.toLocaleString('en-US')} test images loaded`;
  }
  ui.digits.textContent = '';
  const per = d.channels * d.rows * d.cols;
  const shown = d.channels === 1 || d.channels === 3 ? '' : ` (channel 1 of ${d.channels} shown, in grey)`;
  d.labels.forEach((label, i) => {
    const cell = document.createElement('div');
    cell.className = 'digit-cell';
    if (shown) cell.title = `label ${label}${shown}`;
    const c = document.createElement('canvas');
    c.width = d.cols;
    c.height = d.rows;
    drawImage(c.getContext('2d')!, d.pixels.subarray(i * per, (i + 1) * per), d.channels, d.cols, d.rows);
    const p = document.createElement('span');
    p.className = 'pred';
    p.textContent = `label ${label}`;
    cell.append(c, p);
    ui.digits.append(cell);
  });
  refreshControls();
  maybeAutostart();
}

function showDigitPredictions(predicted: number[], after: string): void {
  if (!digits) return;
  const cells = ui.digits.querySelectorAll<HTMLElement>('.digit-cell');
  let right = 0;
  predicted.forEach((p, i) => {
    const cell = cells[i];
    if (!cell) return;
    const ok = p === digits!.labels[i];
    if (ok) right++;
    cell.className = `digit-cell ${ok ? 'right' : 'wrong'}`;
    cell.title = `label ${digits!.labels[i]}, predicted ${p}${digits!.channels === 1 || digits!.channels === 3 ? '' : ` (channel 1 of ${digits!.channels} shown, in grey)`}`;
    cell.querySelector('.pred')!.textContent = ok ? `${p} ✓` : `${p} ✗ (${digits!.labels[i]})`;
  });
  ui.digitsAfter.textContent = `· predicted after ${after}: ${right} of ${predicted.length} right`;
}

// ---- the drawing pad ----

/**
 * The pad draws MNIST's digits (28×28, grey, white on black, centred by mass: mnistPixels), so
 * only a model of that input gets it; any other (colour images, another size) gets a line that
 * says why there is none, and the page's main column takes its place.
 */
function setPad(input: number[]): void {
  padOn = input.join() === '1,28,28';
  ui.layout.classList.toggle('no-pad', !padOn);
  ui.digitsTitle.textContent = padOn ? 'Test digits' : 'Test images';
  ui.padOff.hidden = padOn;
  ui.padOff.textContent = padOn ? '' : `No drawing pad: it draws 28×28 grey digits, MNIST's input [1, 28, 28]; this model takes [${input.join(', ')}].`;
  if (!padOn) clearPad();
}

const pad = ui.pad.getContext('2d', { willReadFrequently: true })!;
const seen = ui.seen.getContext('2d')!;
let hasInk = false;
let drawing = false;
/** The points of the stroke being drawn: smoothed by quadratic curves through their midpoints. */
let points: [number, number][] = [];

function clearPad(): void {
  pad.fillStyle = '#000';
  pad.fillRect(0, 0, ui.pad.width, ui.pad.height);
  seen.fillStyle = '#000';
  seen.fillRect(0, 0, 28, 28);
  hasInk = false;
  showBars(undefined);
}

function padPoint(e: PointerEvent): [number, number] {
  const r = ui.pad.getBoundingClientRect();
  return [((e.clientX - r.left) * ui.pad.width) / r.width, ((e.clientY - r.top) * ui.pad.height) / r.height];
}

const mid = (a: [number, number], b: [number, number]): [number, number] => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];

/** A stroke segment from `from` to `to`, curved towards `ctrl` when given. */
function stroke(from: [number, number], to: [number, number], ctrl?: [number, number]): void {
  pad.strokeStyle = '#fff';
  pad.lineWidth = ui.pad.width / 13;
  pad.lineCap = 'round';
  pad.lineJoin = 'round';
  pad.beginPath();
  pad.moveTo(from[0], from[1]);
  if (ctrl) pad.quadraticCurveTo(ctrl[0], ctrl[1], to[0], to[1]);
  else pad.lineTo(to[0], to[1]);
  pad.stroke();
  hasInk = true;
}

ui.pad.addEventListener('pointerdown', (e) => {
  e.preventDefault();
  ui.pad.setPointerCapture(e.pointerId);
  drawing = true;
  const p = padPoint(e);
  points = [p];
  stroke(p, p);
  void predictPad();
});
ui.pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  points.push(padPoint(e));
  const n = points.length;
  if (n === 2) stroke(points[0]!, mid(points[0]!, points[1]!));
  else stroke(mid(points[n - 3]!, points[n - 2]!), mid(points[n - 2]!, points[n - 1]!), points[n - 2]);
  void predictPad();
});
for (const ev of ['pointerup', 'pointercancel'] as const) {
  ui.pad.addEventListener(ev, () => {
    if (!drawing) return;
    drawing = false;
    const n = points.length;
    if (n >= 2) stroke(mid(points[n - 2]!, points[n - 1]!), points[n - 1]!);
    points = [];
    void predictPad(true);
  });
}
ui.clear.onclick = clearPad;

/**
 * The drawing as MNIST's digits were made: the strokes' bounding box scaled to fit 20×20 (aspect
 * kept, each pixel the average of the area it covers), then placed in 28×28 with its centre of
 * mass at the centre. Pixels 0..255, white on black; null when nothing is drawn.
 */
function mnistPixels(): Float32Array | null {
  const W = ui.pad.width;
  const H = ui.pad.height;
  const src = pad.getImageData(0, 0, W, H).data;
  let x0 = W;
  let y0 = H;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (src[4 * (y * W + x)]! > 10) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const scale = 20 / Math.max(bw, bh);
  const tw = Math.max(1, Math.round(bw * scale));
  const th = Math.max(1, Math.round(bh * scale));
  const sum = new Float32Array(tw * th);
  const count = new Float32Array(tw * th);
  for (let y = y0; y <= y1; y++) {
    const ty = Math.min(th - 1, Math.floor(((y - y0) * th) / bh));
    for (let x = x0; x <= x1; x++) {
      const tx = Math.min(tw - 1, Math.floor(((x - x0) * tw) / bw));
      sum[ty * tw + tx] += src[4 * (y * W + x)]!;
      count[ty * tw + tx]++;
    }
  }
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) {
      const v = count[ty * tw + tx] ? sum[ty * tw + tx]! / count[ty * tw + tx]! : 0;
      sum[ty * tw + tx] = v;
      mass += v;
      mx += v * (tx + 0.5);
      my += v * (ty + 0.5);
    }
  }
  if (!mass) return null;
  const ox = Math.round(14 - mx / mass);
  const oy = Math.round(14 - my / mass);
  const out = new Float32Array(28 * 28);
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) {
      const X = tx + ox;
      const Y = ty + oy;
      if (X >= 0 && X < 28 && Y >= 0 && Y < 28) out[Y * 28 + X] = Math.min(255, sum[ty * tw + tx]!);
    }
  }
  return out;
}

function showSeen(pixels: Float32Array): void {
  drawImage(seen, pixels, 1, 28, 28);
}

let inFlight = false;
let again = false;
let lastAsk = 0;
/** Predicts the drawing: one request in flight, at most every 60 ms while drawing. */
async function predictPad(final = false): Promise<void> {
  if (!hasInk || !opened) return;
  if (inFlight || (!final && performance.now() - lastAsk < 60)) {
    again = true;
    if (!inFlight) setTimeout(() => void predictPad(), 60);
    return;
  }
  const x = mnistPixels();
  if (!x) return;
  again = false;
  inFlight = true;
  lastAsk = performance.now();
  showSeen(x);
  try {
    showBars(await ask(x));
  } catch {
    // the error box says why
  } finally {
    inFlight = false;
    if (again) void predictPad(true);
  }
}

/** New weights (an epoch, a loaded file, another backend): the drawing's probabilities again. */
async function repredict(): Promise<void> {
  if (hasInk) await predictPad(true);
}

function buildBars(classes: number): void {
  ui.bars.textContent = '';
  for (let k = 0; k < classes; k++) {
    const row = document.createElement('div');
    row.className = 'bar';
    row.innerHTML = `<span class="digit">${k}</span><span class="track"><span class="fill" style="display:block"></span></span><span class="pct">–</span>`;
    ui.bars.append(row);
  }
}

function showBars(probs: number[] | undefined): void {
  const rows = ui.bars.querySelectorAll<HTMLElement>('.bar');
  let best = -1;
  if (probs) for (let k = 0; k < probs.length; k++) if (best < 0 || probs[k]! > probs[best]!) best = k;
  rows.forEach((row, k) => {
    const p = probs?.[k] ?? 0;
    (row.querySelector('.fill') as HTMLElement).style.width = `${(p * 100).toFixed(1)}%`;
    row.querySelector('.pct')!.textContent = probs ? `${(p * 100).toFixed(1)}%` : '–';
    row.classList.toggle('top', k === best);
  });
  ui.barsNote.textContent = probs
    ? `predicted ${best} (${(probs[best]! * 100).toFixed(1)}%)${page.losses.length ? '' : ', from the initial weights: train to improve it'}`
    : 'draw with the mouse or a finger';
}

// ---- weights ----

ui.download.onclick = () => send({ type: 'saveWeights' });
ui.load.onchange = async () => {
  const f = ui.load.files?.[0];
  ui.load.value = '';
  if (!f) return;
  const bytes = new Uint8Array(await f.arrayBuffer());
  send({ type: 'loadWeights', bytes, name: f.name }, [bytes.buffer]);
};

// ---- data files (a bundle without a dataset) ----

type DataKey = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';
const DATA_NAMES: Record<DataKey, string> = { trainImages: 'train-images-idx3-ubyte', trainLabels: 'train-labels-idx1-ubyte', testImages: 't10k-images-idx3-ubyte', testLabels: 't10k-labels-idx1-ubyte' };
const chosen = new Map<DataKey, File>();

function dataKey(name: string): DataKey | undefined {
  const n = name.toLowerCase();
  const test = /t10k|test/.test(n);
  const train = !test && /train/.test(n);
  const images = /images|idx3/.test(n);
  const labels = /labels|idx1/.test(n);
  if (train === test || images === labels) return undefined;
  return train ? (images ? 'trainImages' : 'trainLabels') : images ? 'testImages' : 'testLabels';
}

async function takeDataFiles(files: FileList | File[]): Promise<void> {
  const unknown: string[] = [];
  for (const f of Array.from(files)) {
    const k = dataKey(f.name);
    if (k) chosen.set(k, f);
    else unknown.push(f.name);
  }
  const missing = (Object.keys(DATA_NAMES) as DataKey[]).filter((k) => !chosen.has(k));
  if (unknown.length) showError({ message: `not an MNIST-style IDX file name: ${unknown.join(', ')}`, hint: `the files are named like ${Object.values(DATA_NAMES).join(', ')} (raw or .gz)` });
  if (missing.length) {
    ui.dataStatus.textContent = `still needed: ${missing.map((k) => DATA_NAMES[k]).join(', ')}`;
    return;
  }
  ui.dataStatus.textContent = 'reading the files…';
  const keys = Object.keys(DATA_NAMES) as DataKey[];
  const bytes = await Promise.all(keys.map(async (k) => new Uint8Array(await chosen.get(k)!.arrayBuffer())));
  const filesOut = Object.fromEntries(keys.map((k, i) => [k, bytes[i]!])) as Record<DataKey, Uint8Array>;
  const names = Object.fromEntries(keys.map((k) => [k, chosen.get(k)!.name])) as Record<DataKey, string>;
  chosen.clear();
  send({ type: 'data', files: filesOut, names }, bytes.map((b) => b.buffer));
}

ui.dataFiles.onchange = () => {
  if (ui.dataFiles.files) void takeDataFiles(ui.dataFiles.files);
  ui.dataFiles.value = '';
};
ui.drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  ui.drop.classList.remove('over');
  if (e.dataTransfer?.files.length) void takeDataFiles(e.dataTransfer.files);
});

// ---- start ----

clearPad();
buildBars(10);
setState('loading');
for (const e of paramErrors) showError(e);
scheduleChart();
startWorker();
