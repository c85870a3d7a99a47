import type { Kernel, Program } from '../../ir/program.ts';
import { wgslKernel } from './kernels/index.ts';
import { checkBindings } from './reflect.ts';
import type { WgslDispatch } from './shader.ts';

export type { WgslBinding, WgslDispatch } from './shader.ts';
export { STEP_SLOT_BYTES } from './shader.ts';

export interface WgslKernel {
  readonly kernel: Kernel;
  /** What computes it, in order (none for a copy onto itself). */
  readonly dispatches: readonly WgslDispatch[];
}

export interface WgslProgram {
  readonly program: Program;
  readonly kernels: readonly WgslKernel[];
}

export interface WgslOptions {
  /** The run's seed: keys dropout masks (baked into the shaders). */
  readonly seed: number;
}

/**
 * Program → WGSL: every kernel's dispatches, each shader parsed back with wgsl_reflect and its
 * bindings checked against the kernel's slices (src/codegen/wgsl/reflect.ts).
 */
export function emitWgsl(program: Program, opts: WgslOptions): WgslProgram {
  const kernels = program.kernels.map((kernel) => {
    const gen = wgslKernel(kernel);
    if (!gen) throw new Error(`wgsl: no kernel for kind '${kernel.kind}' (${kernel.name})`);
    const dispatches = gen({ program, kernel, seed: opts.seed });
    checkBindings(program, kernel, dispatches);
    return { kernel, dispatches };
  });
  return { program, kernels };
}

/** Every shader of a program, for `kiln ir --stage wgsl`. */
export function printWgsl(w: WgslProgram): string {
  const out: string[] = [`// ${w.program.stage} step, batch ${w.program.batchSize}: ${w.kernels.length} kernels, ${w.kernels.reduce((n, k) => n + k.dispatches.length, 0)} dispatches, arena ${w.program.memory.arenaBytes} bytes`];
  for (const k of w.kernels) {
    for (const d of k.dispatches) {
      const binds = d.bindings.map((b) => (b.kind === 'step' ? `@${b.binding} step` : `@${b.binding} [${b.slice.offset}, +${b.slice.bytes})`)).join(', ');
      out.push('', `// ---- ${d.label}: workgroups ${d.workgroups.join('x')} of ${d.workgroupSize}; bindings ${binds || 'none'}`, d.code.trimEnd());
    }
  }
  return out.join('\n') + '\n';
}
