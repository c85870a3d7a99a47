import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { numel } from '../ir/shape.ts';
import { BUNDLE_EXT, programKey, writeBundle, type Precompiled } from '../frontend/bundle.ts';
import { loadModelFile, whileChecking, type LoadedModel } from '../frontend/loader.ts';
import type { Graph } from '../ir/graph.ts';
import type { Program } from '../ir/program.ts';
import { layoutState } from '../codegen/wasm-simd/layout.ts';
import { wasmStep } from '../codegen/wasm-simd/step.ts';
import { loadBinaryen } from '../codegen/wasm-simd/emitter.ts';
import { tooLargeForWasm, WASM_MEMORY_BYTES } from '../runtime/wasm/memory-limit.ts';
import { humanBytes } from '../ir/printer/program.ts';
import { humanCount, summarize } from '../ir/printer/summary.ts';
import { WASM_TARGET } from '../codegen/wasm-simd/target.ts';
import { WEBGPU_PORTABLE } from '../codegen/wgsl/target.ts';
import { compileProgram } from '../passes/compile.ts';
import { checkWritable } from '../runtime/output-file.ts';
import { graphFor } from './graphs.ts';
import { checkSessionFlags, evalBatchFor, mergeFlags } from './session.ts';
import { compileStandalone, type StandaloneFlags } from './standalone.ts';

export interface CompileFlags extends StandaloneFlags {
  standalone?: boolean;
}

/**
 * Compiles a model file into a bundle: its code, training options, and the planned Programs of
 * the training step (at the training batch size) and the evaluation step (batch 1000; a text
 * model's at its training batch), compiled
 * for the wasm target (which the reference backend runs too) and for the portable WebGPU one
 * (within every adapter's storage-buffer limit).
 */
export async function compileCommand(modelPath: string, flags: CompileFlags): Promise<void> {
  if (flags.standalone) return compileStandalone(modelPath, flags);
  for (const [flag, v] of [['--backend', flags.backend], ['--data', flags.data], ['--threads', flags.threads], ['--seed', flags.seed], ['--normalize', flags.normalize], ['--labels', flags.labels]] as const) {
    if (v !== undefined) throw new KilnError('usage', `${flag} applies to standalone bundles only`, undefined, 'add --standalone, or drop the flag');
  }
  checkSessionFlags(flags);
  // A bad -o is told before the model is loaded: a typo costs no compile. The default is named
  // after the model file, which a bundle records.
  if (flags.output) checkWritable('-o', flags.output);
  const t0 = performance.now();
  // The checks run on a worker while the steps are compiled (see whileChecking).
  const loaded = await loadModelFile(modelPath, { lintAside: true });
  await whileChecking(loaded, () => writeCompiled(loaded, flags, t0));
}

/** The bundle of a loaded model (see compileCommand), written once the model's checks passed. */
async function writeCompiled(loaded: LoadedModel, flags: CompileFlags, t0: number): Promise<void> {
  const training = mergeFlags(loaded.training, flags);
  const out = flags.output ?? `${basename(loaded.file).replace(/\.[^.]+$/, '')}${BUNDLE_EXT}`;
  checkWritable('-o', out);
  // One set of Programs per backend family: wasm's kernels are never split for WebGPU's bindings.
  const compiled: Precompiled[] = [WASM_TARGET, WEBGPU_PORTABLE].map((target) => ({ target, programs: {} }));
  const lines: string[] = [];
  for (const [stage, batch] of [['train', training.batchSize], ['eval', evalBatchFor(training)]] as const) {
    const graph = graphFor(loaded, stage, { batchSize: batch, optimizer: training.optimizer });
    const ps = compiled.map((c) => ((c.programs as Record<string, Program>)[programKey(stage, batch)] = compileProgram(graph, c.target)));
    const m = ps[0]!.memory;
    await checkMemory(loaded.file, stage, batch, ps[0]!, graph.state);
    const kernels = ps.map((p, i) => `${p.kernels.length} ${i === 0 ? 'wasm' : 'webgpu'}`).join(' / ');
    lines.push(`  ${stage.padEnd(5)} batch ${String(batch).padStart(4)}: ${kernels} kernels, ${humanCount(summarize(graph).flopsPerStep)}FLOP per step, arena ${humanBytes(m.arenaBytes)} (naive ${humanBytes(m.naiveBytes)}, lower bound ${humanBytes(m.lowerBoundBytes)})`);
  }
  await loaded.checked;
  writeBundle(out, { format: 'kiln-bundle', version: 3, name: loaded.name, file: loaded.file, code: loaded.code, training, compiled });
  const size = statSync(out).size;
  process.stderr.write(`kiln: compiled ${loaded.name} (${loaded.file}) in ${((performance.now() - t0) / 1000).toFixed(2)} s\n${lines.join('\n')}\nkiln: wrote ${out} (${(size / 1024).toFixed(0)} KiB); run it with: kiln train ${out}\n`);
}

/**
 * A step that cannot fit in WebAssembly's memory is said at compile time, with a batch size that
 * would, not found 28 s into loading it. Near the limit the wasm module is generated to count its
 * scratch too, so that what compile accepts is what the backend can load (on this machine's cores).
 */
async function checkMemory(file: string, stage: string, batch: number, program: Program, state: Graph['state']): Promise<void> {
  const stateBytes = state.reduce((a, s) => a + 4 * numel(s.shape), 0);
  let need = program.memory.arenaBytes + stateBytes;
  if (need > 0.75 * WASM_MEMORY_BYTES) {
    await loadBinaryen();
    need = wasmStep(program, { threads: availableParallelism(), relaxed: false, layout: layoutState(state), optimize: false }).step.memoryBytes;
  }
  if (need > WASM_MEMORY_BYTES) {
    throw tooLargeForWasm(`${file}: the ${stage} step at batch ${batch}`, batch, need, stateBytes, ` (arena ${humanBytes(program.memory.arenaBytes)}, weights and optimizer state ${humanBytes(stateBytes)}, and scratch)`);
  }
}
