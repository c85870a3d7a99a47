import type { WasmStateLayout, WasmStep, WasmTensor } from '../artifact.ts';
import type { Program, Slice } from '../../ir/program.ts';
import { buildModule, type CompiledProgram, type CompileOptions } from './module.ts';
import type { MemoryLayout } from './layout.ts';

/** A Program's module with the addresses the runtime writes and reads around each call (see WasmStep). */
export function wasmStep(program: Program, opts: CompileOptions): { step: WasmStep; compiled: CompiledProgram } {
  const compiled = buildModule(program, opts);
  const at = (s: Slice): WasmTensor => ({ addr: compiled.addr(s), shape: s.shape });
  const need = (name: string, s: Slice | undefined): Slice => {
    if (!s) throw new Error(`the ${program.stage} program has no ${name}`);
    return s;
  };
  const scalars = Object.entries(program.inputs).filter(([name]) => !['x', 'labels', 'step'].includes(name));
  const step: WasmStep = {
    stage: program.stage as 'train' | 'eval',
    batchSize: program.batchSize,
    threads: compiled.threads,
    relaxed: compiled.relaxed,
    binary: compiled.binary,
    memoryBytes: compiled.memoryBytes,
    x: at(need('x input', program.inputs.x)),
    labels: at(need('labels input', program.inputs.labels)),
    ...(program.inputs.step ? { step: at(program.inputs.step) } : {}),
    ...(scalars.length ? { scalars: Object.fromEntries(scalars.map(([name, sl]) => [name, at(sl)])) } : {}),
    loss: at(need('loss output', program.outputs.loss)),
    logits: at(need('logits output', program.outputs.logits)),
    constants: program.constants.map((c) => ({ addr: compiled.addr(c.slice), value: c.value })),
    kernels: program.kernels.map((k) => ({ name: k.name, kind: k.kind })),
  };
  return { step, compiled };
}

/** The layout as plain data, for the runtime and for a standalone bundle's manifest. */
export function stateLayout(layout: MemoryLayout): WasmStateLayout {
  return { state: [...layout.state].map(([name, s]) => ({ name, addr: s.addr, shape: [...s.shape] })), arenaBase: layout.arenaBase };
}
