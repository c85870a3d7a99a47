import { humanBytes } from '../ir/printer/program.ts';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { WasmStep } from '../codegen/artifact.ts';
import { loadBinaryen } from '../codegen/wasm-simd/emitter.ts';
import { layoutState } from '../codegen/wasm-simd/layout.ts';
import { stateLayout, wasmStep } from '../codegen/wasm-simd/step.ts';
import { WASM_TARGET } from '../codegen/wasm-simd/target.ts';
import { wgslStep } from '../codegen/wgsl/step.ts';
import { WEBGPU_PORTABLE } from '../codegen/wgsl/target.ts';
import { loadModelFile, whileChecking, type LoadedModel } from '../frontend/loader.ts';
import { kilnRoot } from '../frontend/source-loc.ts';
import { KilnError } from '../ir/errors.ts';
import { humanCount, summarize } from '../ir/printer/summary.ts';
import { memoizeSteps } from '../runtime/backend.ts';
import type { Dataset, Split } from '../runtime/data/dataset.ts';
import { loadDataset } from '../runtime/data/dataset-file.ts';
import { initDraws, initialState } from '../runtime/init.ts';
import { encodeSafetensors } from '../runtime/safetensors.ts';
import { STANDALONE_FORMAT, STANDALONE_VERSION, type Manifest, type ManifestWasmModule } from '../runtime/standalone/manifest.ts';
import type { StoredWgslStep } from '../runtime/standalone/open.ts';
import { runSteps } from '../runtime/trainer.ts';
import { graphFor } from './graphs.ts';
import { choice, positiveInt } from './options.ts';
import { buildRuntimeFiles } from './runtime-build.ts';
import { checkModelFitsData, checkSessionFlags, EVAL_BATCH, labelsFlag, lowerFor, mergeFlags, type SessionFlags } from './session.ts';

export interface StandaloneFlags extends Pick<SessionFlags, 'batchSize' | 'lr' | 'optimizer' | 'momentum' | 'weightDecay' | 'seed' | 'normalize' | 'labels' | 'randomCrop' | 'horizontalFlip'> {
  output?: string;
  backend?: string;
  data?: string;
  threads?: string;
}

/** Thread counts compiled by default: a page or a machine picks the largest that fits its cores. */
const DEFAULT_THREADS = [1, 2, 4, 8];

const DATA_FILES = { trainImages: 'train-images-idx3-ubyte', trainLabels: 'train-labels-idx1-ubyte', testImages: 't10k-images-idx3-ubyte', testLabels: 't10k-labels-idx1-ubyte' } as const;

function parseThreads(v: string | undefined): number[] {
  if (v === undefined) return DEFAULT_THREADS;
  const list = [...new Set(v.split(',').map((s) => positiveInt('--threads', s.trim())))].sort((a, b) => a - b);
  if (list.some((t) => t > 64)) throw new KilnError('usage', `--threads: at most 64 threads; got '${v}'`, undefined, 'list thread counts from 1 to 64 (the default is 1,2,4,8)');
  return list;
}

/** An IDX file's bytes: u8 images [count, rows, cols] (magic 0x803) or u8 labels [count] (0x801). */
function idxBytes(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x800 + dims.length, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function splitFiles(s: Split, shape: readonly number[]): [Uint8Array, Uint8Array] {
  return [idxBytes([s.count, ...(shape[0] === 1 ? shape.slice(1) : shape)], s.images), idxBytes([s.count], s.labels)];
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/**
 * `kiln compile --standalone`: a folder that trains the model with no kiln install (see
 * src/runtime/standalone/manifest.ts): every step an epoch runs, compiled for each backend (wasm:
 * each thread count, relaxed SIMD and plain), the seed's initial weights, the dataset as gzip
 * IDX, the runtime, Node's train.mjs and the page. Written to a temporary folder and renamed, so
 * a failure never leaves half a bundle.
 */
export async function compileStandalone(modelPath: string, flags: StandaloneFlags): Promise<void> {
  const t0 = performance.now();
  const backends = choice('--backend', flags.backend ?? 'all', ['wasm', 'webgpu', 'all'] as const);
  const threadCounts = parseThreads(flags.threads);
  checkSessionFlags(flags);
  // A bad -o is told before the model is loaded (and binaryen with it); the default is named
  // after the model file, which a bundle records.
  if (flags.output) checkOutput(resolve(flags.output));
  const binaryen = backends !== 'webgpu' ? loadBinaryen() : undefined;
  // The checks run on a worker while the steps are built; a failure in between waits for them,
  // whose error (where they find one) says more about the same mistake.
  const loaded = await loadModelFile(modelPath, { lintAside: true });
  await whileChecking(loaded, () => writeStandalone(loaded, flags, { t0, backends, threadCounts, binaryen }));
}

/** The bundle of a loaded model (see compileStandalone), written once the model's checks passed. */
async function writeStandalone(loaded: LoadedModel, flags: StandaloneFlags, o: { t0: number; backends: 'wasm' | 'webgpu' | 'all'; threadCounts: number[]; binaryen: Promise<unknown> | undefined }): Promise<void> {
  const { t0, backends, threadCounts, binaryen } = o;
  const training = mergeFlags(loaded.training, { ...flags, data: undefined });
  const out = resolve(flags.output ?? `${basename(loaded.file).replace(/\.[^.]+$/, '')}.kiln`);
  checkOutput(out);

  const spec = flags.data ?? training.dataset;
  // The page and train.mjs feed images only so far: text windows, their evaluation and a bundle's copy of the text are to come.
  if (training.dataset === 'text' || extname(spec).toLowerCase() === '.txt') throw new KilnError('usage', `${loaded.file}: a standalone bundle trains on images; this model trains on text`, undefined, 'train it with kiln train MODEL.ts');
  // Without a dataset to carry, the steps are compiled for MNIST's sizes (the page asks for files of that shape).
  const data: Dataset = loadDataset(spec === 'none' ? 'mnist' : spec, { ...(training.normalize ? { normalize: training.normalize } : {}), labels: labelsFlag(flags) });
  // The dataset's own default when neither the flag nor the model file gives one.
  const normalize = data.normalize;
  const steps = memoizeSteps({
    train: (b) => graphFor(loaded, 'train', { batchSize: b, optimizer: training.optimizer }),
    eval: (b) => graphFor(loaded, 'eval', { batchSize: b, optimizer: training.optimizer }),
  });
  const first = steps.train(training.batchSize);
  checkModelFitsData(loaded, first, data, steps, training);
  const lower = lowerFor(loaded, training);
  const shapes = runSteps(data.train.count, data.test.count, training.batchSize, EVAL_BATCH);

  const files = new Map<string, Uint8Array>();
  const manifestSteps = shapes.map(([stage, batchSize]) => ({ stage, batchSize }));
  // Each backend's Programs for its own target; the page's WebGPU runs on any adapter, so its
  // steps are compiled for the portable one.
  const targets = [...(backends !== 'webgpu' ? [WASM_TARGET] : []), ...(backends !== 'wasm' ? [WEBGPU_PORTABLE] : [])];
  const programs = new Map(targets.map((t) => [t, new Map(shapes.map(([stage, b]) => [`${stage}/${b}`, lower(steps[stage](b), t)]))]));
  const lines = shapes.map(([stage, b]) => {
    const per = targets.map((t) => {
      const p = programs.get(t)!.get(`${stage}/${b}`)!;
      return `${t.name}: ${String(p.kernels.length).padStart(3)} kernels, arena ${humanBytes(p.memory.arenaBytes)}`;
    });
    return `  ${stage.padEnd(5)} batch ${String(b).padStart(4)}: ${humanCount(summarize(steps[stage](b)).flopsPerStep)}FLOP per step; ${per.join('; ')}`;
  });

  let wasm: Manifest['wasm'];
  if (binaryen) {
    await binaryen;
    const layout = layoutState(first.state);
    const modules: ManifestWasmModule[] = [];
    for (const [stage, b] of shapes) {
      for (const threads of threadCounts) {
        for (const relaxed of [true, false]) {
          const { step } = wasmStep(programs.get(WASM_TARGET)!.get(`${stage}/${b}`)!, { threads, relaxed, layout });
          const file = `wasm/${stage}-${b}-t${threads}${relaxed ? '-relaxed' : ''}.wasm`;
          files.set(file, step.binary);
          const { binary: _binary, ...rest } = step as WasmStep;
          modules.push({ file, ...rest });
        }
      }
    }
    wasm = { layout: stateLayout(layout), modules };
  }

  let webgpu: Manifest['webgpu'];
  if (backends !== 'wasm') {
    const wsteps: { file: string; stage: 'train' | 'eval'; batchSize: number }[] = [];
    for (const [stage, b] of shapes) {
      const w = wgslStep(programs.get(WEBGPU_PORTABLE)!.get(`${stage}/${b}`)!, { seed: training.seed });
      const stored: StoredWgslStep = {
        program: w.program,
        dispatches: w.dispatches.map(({ code, ...d }) => {
          const shader = `webgpu/shaders/${sha256(code).slice(0, 16)}.wgsl`;
          files.set(shader, new TextEncoder().encode(code));
          return { ...d, shader };
        }),
      };
      const file = `webgpu/${stage}-${b}.json`;
      files.set(file, new TextEncoder().encode(JSON.stringify(stored)));
      wsteps.push({ file, stage, batchSize: b });
    }
    webgpu = { steps: wsteps };
  }

  const init = initialState(first.state, training.seed);
  const modelState = first.state.filter((s) => s.kind !== 'optim');
  const params = encodeSafetensors(Object.fromEntries(modelState.map((s) => [s.name, { shape: [...s.shape], data: init.get(s.name)! }])), { format: 'pt' });
  files.set('params.safetensors', params);
  const offsets = safetensorsOffsets(params);

  let carried: Manifest['data'] = null;
  if (spec !== 'none') {
    const [ti, tl] = splitFiles(data.train, data.imageShape);
    const [vi, vl] = splitFiles(data.test, data.imageShape);
    const raw = { trainImages: ti, trainLabels: tl, testImages: vi, testLabels: vl };
    const named = Object.fromEntries(Object.entries(DATA_FILES).map(([k, name]) => [k, `data/${name}.gz`])) as Record<keyof typeof DATA_FILES, string>;
    for (const [k, path] of Object.entries(named)) files.set(path, gzipSync(raw[k as keyof typeof raw]));
    carried = { name: data.name, trainCount: data.train.count, testCount: data.test.count, files: named };
  }

  for (const [name, bytes] of await buildRuntimeFiles()) files.set(name, bytes);

  const source = readFileSync(resolve(loaded.file));
  const manifest: Manifest = {
    format: STANDALONE_FORMAT,
    version: STANDALONE_VERSION,
    name: loaded.name,
    file: loaded.file,
    sourceSha256: sha256(source),
    kilnVersion: kilnVersion(),
    input: training.input,
    classes: data.numClasses,
    training: { ...training, normalize, evalBatchSize: EVAL_BATCH },
    initDraws: initDraws(first.state),
    data: carried,
    counts: { train: data.train.count, test: data.test.count },
    state: first.state.map((s) => ({
      name: s.name,
      kind: s.kind,
      shape: [...s.shape],
      ...(s.kind === 'optim' ? { init: s.init.kind === 'constant' ? s.init.value : 0 } : { offset: offsets.get(s.name) }),
    })),
    params: 'params.safetensors',
    steps: manifestSteps,
    ...(wasm ? { wasm } : {}),
    ...(webgpu ? { webgpu } : {}),
    files: Object.fromEntries([...files].map(([name, bytes]) => [name, sha256(bytes)])),
  };
  files.set('manifest.json', new TextEncoder().encode(JSON.stringify(manifest, null, 1) + '\n'));
  await loaded.checked;
  writeFolder(out, files);

  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  const runtime = files.get('kiln-runtime.mjs')!;
  const total = [...files.values()].reduce((n, b) => n + b.length, 0);
  const err = process.stderr;
  err.write(`kiln: compiled ${loaded.name} (${loaded.file}) standalone in ${((performance.now() - t0) / 1000).toFixed(2)} s\n${lines.join('\n')}\n`);
  if (wasm) err.write(`  wasm: ${wasm.modules.length} modules (threads ${threadCounts.join(', ')}; relaxed SIMD and SIMD128)\n`);
  if (webgpu) err.write(`  webgpu: ${webgpu.steps.length} steps, ${[...files.keys()].filter((f) => f.endsWith('.wgsl')).length} distinct shaders\n`);
  err.write(`  runtime: kiln-runtime.mjs ${kib(runtime.length)} (${kib(gzipSync(runtime, { level: 9 }).length)} gzipped)${carried ? `; data: ${carried.name}, ${carried.trainCount.toLocaleString('en-US')} + ${carried.testCount.toLocaleString('en-US')} images` : '; no data (the page asks for the IDX files)'}\n`);
  err.write(`kiln: wrote ${out} (${files.size} files, ${kib(total)}); run it with: node ${join(flags.output ?? basename(out), 'train.mjs')}, or in a browser: kiln serve ${flags.output ?? basename(out)}\n`);
}

/** Where each tensor's data starts in a safetensors file, counted from the end of its header. */
function safetensorsOffsets(bytes: Uint8Array): Map<string, number> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets?: [number, number] }>;
  return new Map(Object.entries(header).flatMap(([k, v]) => (v.data_offsets ? [[k, v.data_offsets[0]] as [string, number]] : [])));
}

function kilnVersion(): string {
  return (JSON.parse(readFileSync(join(kilnRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
}

/** The output folder may be new, or an earlier standalone bundle (replaced whole); nothing else. */
function checkOutput(out: string): void {
  if (existsSync(out) && !(statSync(out).isDirectory() && existsSync(join(out, 'manifest.json')))) {
    throw new KilnError('usage', `${out} exists and is not a standalone bundle folder; kiln will not overwrite it`, undefined, 'choose another folder with -o');
  }
  if (!existsSync(dirname(out))) throw new KilnError('usage', `-o ${out}: directory ${dirname(out)} does not exist`, undefined, 'create it first, or choose another folder with -o');
}

function writeFolder(out: string, files: Map<string, Uint8Array>): void {
  const tmp = `${out}.tmp-${process.pid}`;
  const old = `${out}.old-${process.pid}`;
  try {
    rmSync(tmp, { recursive: true, force: true });
    for (const [name, bytes] of files) {
      mkdirSync(dirname(join(tmp, name)), { recursive: true });
      writeFileSync(join(tmp, name), bytes);
    }
    if (existsSync(out)) renameSync(out, old);
    renameSync(tmp, out);
    rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(out)) renameSync(old, out);
    throw new KilnError('io', `cannot write the bundle folder ${out}: ${(e as Error).message}`, undefined, 'choose a writable folder with -o');
  }
}
