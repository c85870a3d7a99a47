import { KilnError } from '../ir/errors.ts';
import type { Graph } from '../ir/graph.ts';
import { printDot } from '../ir/printer/dot.ts';
import { printJson } from '../ir/printer/json.ts';
import { printProgramJson, printProgramSvg, printProgramText } from '../ir/printer/program.ts';
import { printText } from '../ir/printer/text.ts';
import { loadModelFile } from '../frontend/loader.ts';
import { WASM_TARGET } from '../codegen/wasm-simd/target.ts';
import { WEBGPU_PORTABLE } from '../codegen/wgsl/target.ts';
import { kernelStages } from '../passes/compile.ts';
import { REFERENCE_TARGET } from '../runtime/reference/target.ts';
import { printKernelGraphJson, printKernelGraphText } from '../passes/dump.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { graphFor } from './graphs.ts';
import { checkWritable, writeFileAtomic } from '../runtime/output-file.ts';
import { choice, positiveInt } from './options.ts';

export interface IrFlags {
  stage: string;
  format: string;
  step: string;
  backend?: string;
  batchSize?: string;
  output?: string;
}

const graphStages = ['traced', 'train', 'eval', 'simplified'] as const;
const kernelStageNames = ['fused', 'scheduled', 'planned'] as const;
const stages = [...graphStages, ...kernelStageNames, 'wasm', 'wgsl'] as const;
const formats = ['text', 'json', 'dot', 'svg'] as const;

const graphPrinters: Record<string, ((g: Graph) => string) | undefined> = { text: printText, json: printJson, dot: printDot };

/** What each backend compiles for; with no device at hand, WebGPU's is the portable limit. */
const targets = { wasm: WASM_TARGET, webgpu: WEBGPU_PORTABLE, reference: REFERENCE_TARGET } as const;

export async function irCommand(modelPath: string, flags: IrFlags): Promise<void> {
  const stage = choice('--stage', flags.stage, stages);
  const format = choice('--format', flags.format, formats);
  const step = choice('--step', flags.step, ['train', 'eval'] as const);
  const flagBatch = flags.batchSize === undefined ? undefined : positiveInt('--batch-size', flags.batchSize);
  // The code stages are one backend's each.
  const stageBackend = stage === 'wasm' ? 'wasm' : stage === 'wgsl' ? 'webgpu' : undefined;
  const backend = choice('--backend', flags.backend ?? stageBackend ?? 'wasm', Object.keys(targets) as (keyof typeof targets)[]);
  if (stageBackend && backend !== stageBackend) throw new KilnError('usage', `--stage ${stage} is the ${stageBackend} backend's code`, undefined, `drop --backend, or use --backend ${stageBackend}`);
  // Before the model is loaded and compiled: a dump that cannot be written costs nothing.
  if (flags.output) checkWritable('-o', flags.output);
  const loaded = await loadModelFile(modelPath);
  const opts = { batchSize: flagBatch ?? loaded.training.batchSize, optimizer: loaded.training.optimizer };
  const target = targets[backend];
  let text: string | undefined;
  if (stage === 'wasm') {
    // The module the wasm backend runs for this step, in text form, kernel by kernel.
    const { wasmText } = await import('../runtime/wasm/dump.ts');
    text = format === 'text' ? await wasmText(planMemory(kernelStages(graphFor(loaded, step, opts), target).scheduled)) : undefined;
  } else if (stage === 'wgsl') {
    // The compute shaders the webgpu backend runs for this step, dispatch by dispatch.
    const { emitWgsl, printWgsl } = await import('../codegen/wgsl/index.ts');
    text = format === 'text' ? printWgsl(emitWgsl(planMemory(kernelStages(graphFor(loaded, step, opts), target).scheduled), { seed: loaded.training.seed })) : undefined;
  } else if (stage === 'traced' || stage === 'train' || stage === 'eval') {
    text = graphPrinters[format]?.(graphFor(loaded, stage, opts));
  } else {
    const kernels = kernelStages(graphFor(loaded, step, opts), target);
    if (stage === 'simplified') text = format === 'text' ? printText(kernels.simplified, `simplified ${step} graph`) : graphPrinters[format]?.(kernels.simplified);
    else if (stage === 'planned') {
      const p = planMemory(kernels.scheduled);
      text = format === 'text' ? printProgramText(p) : format === 'json' ? printProgramJson(p) : format === 'svg' ? printProgramSvg(p) : undefined;
    } else {
      const kg = kernels[stage];
      text = format === 'text' ? printKernelGraphText(kg, stage) : format === 'json' ? printKernelGraphJson(kg, stage) : undefined;
    }
  }
  if (text === undefined) {
    const fits = stage === 'wasm' || stage === 'wgsl' ? 'text' : stage === 'planned' ? 'text, json, svg' : (kernelStageNames as readonly string[]).includes(stage) ? 'text, json' : 'text, json, dot';
    throw new KilnError('usage', `--format ${format} does not apply to --stage ${stage}`, undefined, `use one of ${fits}`);
  }
  if (!flags.output) {
    process.stdout.write(text);
    return;
  }
  writeFileAtomic(flags.output, text, 'IR dump', 'choose a writable path for --output');
}
