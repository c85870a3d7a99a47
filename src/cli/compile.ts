import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { BUNDLE_EXT, programKey, writeBundle, type Precompiled } from '../frontend/bundle.ts';
import { loadModelFile } from '../frontend/loader.ts';
import type { Program } from '../ir/program.ts';
import { humanBytes } from '../ir/printer/program.ts';
import { humanCount, summarize } from '../ir/printer/summary.ts';
import { WASM_TARGET } from '../codegen/wasm-simd/target.ts';
import { WEBGPU_PORTABLE } from '../codegen/wgsl/target.ts';
import { compileProgram } from '../passes/compile.ts';
import { checkWritable } from '../runtime/output-file.ts';
import { graphFor } from './graphs.ts';
import { EVAL_BATCH, mergeFlags } from './session.ts';
import { compileStandalone, type StandaloneFlags } from './standalone.ts';

export interface CompileFlags extends StandaloneFlags {
  standalone?: boolean;
}

/**
 * Compiles a model file into a bundle: its code, training options, and the planned Programs of
 * the training step (at the training batch size) and the evaluation step (batch 1000), compiled
 * for the wasm target (which the reference backend runs too) and for the portable WebGPU one
 * (within every adapter's storage-buffer limit).
 */
export async function compileCommand(modelPath: string, flags: CompileFlags): Promise<void> {
  if (flags.standalone) return compileStandalone(modelPath, flags);
  for (const [flag, v] of [['--backend', flags.backend], ['--data', flags.data], ['--threads', flags.threads], ['--seed', flags.seed], ['--normalize', flags.normalize]] as const) {
    if (v !== undefined) throw new KilnError('usage', `${flag} applies to standalone bundles only`, undefined, 'add --standalone, or drop the flag');
  }
  const t0 = performance.now();
  const loaded = await loadModelFile(modelPath);
  const training = mergeFlags(loaded.training, flags);
  const out = flags.output ?? `${basename(loaded.file).replace(/\.[^.]+$/, '')}${BUNDLE_EXT}`;
  checkWritable('-o', out);
  // One set of Programs per backend family: wasm's kernels are never split for WebGPU's bindings.
  const compiled: Precompiled[] = [WASM_TARGET, WEBGPU_PORTABLE].map((target) => ({ target, programs: {} }));
  const lines: string[] = [];
  for (const [stage, batch] of [['train', training.batchSize], ['eval', EVAL_BATCH]] as const) {
    const graph = graphFor(loaded, stage, { batchSize: batch, optimizer: training.optimizer });
    const ps = compiled.map((c) => ((c.programs as Record<string, Program>)[programKey(stage, batch)] = compileProgram(graph, c.target)));
    const m = ps[0]!.memory;
    const kernels = ps.map((p, i) => `${p.kernels.length} ${i === 0 ? 'wasm' : 'webgpu'}`).join(' / ');
    lines.push(`  ${stage.padEnd(5)} batch ${String(batch).padStart(4)}: ${kernels} kernels, ${humanCount(summarize(graph).flopsPerStep)}FLOP per step, arena ${humanBytes(m.arenaBytes)} (naive ${humanBytes(m.naiveBytes)}, lower bound ${humanBytes(m.lowerBoundBytes)})`);
  }
  writeBundle(out, { format: 'kiln-bundle', version: 2, name: loaded.name, file: loaded.file, code: loaded.code, training, compiled });
  const size = statSync(out).size;
  process.stderr.write(`kiln: compiled ${loaded.name} (${loaded.file}) in ${((performance.now() - t0) / 1000).toFixed(2)} s\n${lines.join('\n')}\nkiln: wrote ${out} (${(size / 1024).toFixed(0)} KiB); run it with: kiln train ${out}\n`);
}
