import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { KilnError } from '../ir/errors.ts';
import { BUNDLE_EXT, programKey, writeBundle } from '../frontend/bundle.ts';
import { loadModelFile } from '../frontend/loader.ts';
import type { Program } from '../ir/program.ts';
import { humanCount, summarize } from '../ir/printer/summary.ts';
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
 * the training step (at the training batch size) and the evaluation step (batch 1000). A bundle
 * trains on any backend, so its Programs are compiled for the portable WebGPU target, whose
 * storage-buffer limit is within every backend's.
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
  const programs: Record<string, Program> = {};
  const lines: string[] = [];
  for (const [stage, batch] of [['train', training.batchSize], ['eval', EVAL_BATCH]] as const) {
    const graph = graphFor(loaded, stage, { batchSize: batch, optimizer: training.optimizer });
    const p = compileProgram(graph, WEBGPU_PORTABLE);
    programs[programKey(stage, batch)] = p;
    const m = p.memory;
    lines.push(`  ${stage.padEnd(5)} batch ${String(batch).padStart(4)}: ${String(p.kernels.length).padStart(3)} kernels, ${humanCount(summarize(graph).flopsPerStep)}FLOP per step, arena ${(m.arenaBytes / 2 ** 20).toFixed(2)} MiB (naive ${(m.naiveBytes / 2 ** 20).toFixed(2)} MiB, lower bound ${(m.lowerBoundBytes / 2 ** 20).toFixed(2)} MiB)`);
  }
  writeBundle(out, { format: 'kiln-bundle', version: 1, name: loaded.name, file: loaded.file, code: loaded.code, training, programs });
  const size = statSync(out).size;
  process.stderr.write(`kiln: compiled ${loaded.name} (${loaded.file}) in ${((performance.now() - t0) / 1000).toFixed(2)} s\n${lines.join('\n')}\nkiln: wrote ${out} (${(size / 1024).toFixed(0)} KiB); run it with: kiln train ${out}\n`);
}
