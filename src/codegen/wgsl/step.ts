import type { WgslStep } from '../artifact.ts';
import type { Program } from '../../ir/program.ts';
import { emitWgsl, type WgslOptions } from './index.ts';
import { reflectShader } from './reflect.ts';

/** A Program's dispatches with each shader's reflected entry point and bindings: what the WebGPU runtime loads. */
export function wgslStep(program: Program, opts: WgslOptions): WgslStep {
  const dispatches = emitWgsl(program, opts).kernels.flatMap((k) =>
    k.dispatches.map((d) => {
      const r = reflectShader(d.code, d.label);
      return { ...d, entryPoint: r.entryPoint, layout: r.bindings };
    }),
  );
  return { program, dispatches };
}
