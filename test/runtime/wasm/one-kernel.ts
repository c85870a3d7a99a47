import type { Program, Slice } from '../../../src/ir/program.ts';
import { executeProgram, newArena, sliceOf } from '../../../src/runtime/reference/program.ts';
import { runProgramOnce } from './run-program.ts';
import { kernelScale, parityError } from '../parity/backends.ts';

/** A program of one kernel over named inputs and one output, each slice 256-byte aligned in the arena. */
export function oneKernelProgram(kind: string, inputs: [number[], string][], output: [number[], string], attrs: Record<string, unknown>): Program {
  let offset = 0;
  const slice = ([shape, value]: [number[], string]): Slice => {
    const s = { offset, bytes: 4 * shape.reduce((a, b) => a * b, 1), shape, value };
    offset += Math.ceil(s.bytes / 256) * 256;
    return s;
  };
  const ins = inputs.map(slice);
  const out = slice(output);
  return {
    stage: 'train',
    batchSize: inputs[0]![0][0]!,
    state: [],
    inputs: Object.fromEntries(ins.map((s) => [s.value, s])),
    outputs: {},
    constants: [],
    memory: { arenaBytes: offset, naiveBytes: offset, lowerBoundBytes: offset },
    kernels: [{ name: 'k0', kind, ops: [kind], attrs, inputs: ins, outputs: [out] }],
  } as unknown as Program;
}

/**
 * Runs the one-kernel program on the wasm backend (1 thread) and on the reference, from an arena
 * filled with sin(a·i + b); parityError of the output.
 */
export async function wasmAgainstReference(p: Program, a: number, b: number): Promise<{ error: number; at: number }> {
  const arena = newArena(p);
  for (let i = 0; i < arena.length; i++) arena[i] = Math.sin(a * i + b);
  const before = Float32Array.from(arena);
  executeProgram(p, arena, { seed: 0 });
  const k = p.kernels[0]!;
  const [got] = await runProgramOnce(p, [{ offset: 0, data: before }], k.outputs);
  return parityError(got!, sliceOf(arena, k.outputs[0]!), { scale: kernelScale(before, k.inputs, k.outputs[0]!) });
}
