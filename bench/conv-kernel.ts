/**
 * One convolution kernel of the wasm backend alone, on 1 thread: its time per call and GFLOP/s
 * (the FLOPs of a direct convolution, so Winograd kernels can pass the SIMD peak).
 *
 *   node bench/run.mjs bench/conv-kernel.ts KIND N C O H [STRIDE [K]]
 *
 * KIND is conv2d, conv2d_grad_input or conv2d_grad_weight; x is [N, C, H, H], w [O, C, K, K]
 * (K = 3 by default, padding 1 for K = 3 and 0 otherwise). The arena holds sin(i); 5 warm-up
 * calls (V8's optimising tier compiles the module up front), then the median of 21.
 */
import { IMPORTS, MAX_PAGES, PAGE, waitImport } from '../src/codegen/wasm-simd/abi.ts';
import { loadBinaryen } from '../src/codegen/wasm-simd/emitter.ts';
import { layoutState } from '../src/codegen/wasm-simd/layout.ts';
import { buildModule } from '../src/codegen/wasm-simd/module.ts';
import { optimizingCompiler } from '../src/runtime/wasm/optimized-module.ts';
import { relaxedSimdSupported } from '../src/runtime/wasm/features.ts';
import { oneKernelProgram } from '../test/runtime/wasm/one-kernel.ts';

const [kind, N, C, O, H, S = 1, K = 3] = [process.argv[2]!, ...process.argv.slice(3).map(Number)] as [string, number, number, number, number, number?, number?];
if (!['conv2d', 'conv2d_grad_input', 'conv2d_grad_weight'].includes(kind) || ![N, C, O, H, S, K].every((v) => Number.isInteger(v) && v > 0)) {
  console.error('usage: bench/conv-kernel.ts conv2d|conv2d_grad_input|conv2d_grad_weight N C O H [STRIDE [K]]');
  process.exit(2);
}
const P = K === 3 ? 1 : 0;
const HO = Math.floor((H + 2 * P - K) / S) + 1;
const x = [N, C, H, H];
const w = [O, C, K, K];
const y = [N, O, HO, HO];
const conv = { stride: [S, S], padding: [P, P] };
const p =
  kind === 'conv2d'
    ? oneKernelProgram(kind, [[x, 'x'], [w, 'w']], [y, 'y'], conv)
    : kind === 'conv2d_grad_input'
      ? oneKernelProgram(kind, [[y, 'g'], [w, 'w']], [x, 'dx'], { ...conv, shape: x })
      : oneKernelProgram(kind, [[y, 'g'], [x, 'x']], [w, 'dw'], { ...conv, shape: w });
await loadBinaryen();
const compile = await optimizingCompiler();
const layout = layoutState([]);
const built = buildModule(p, { threads: 1, relaxed: relaxedSimdSupported(), layout });
const memory = new WebAssembly.Memory({ initial: Math.ceil(built.memoryBytes / PAGE), maximum: MAX_PAGES });
const arena = new Float32Array(memory.buffer, layout.arenaBase, p.memory.arenaBytes / 4);
for (let i = 0; i < arena.length; i++) arena[i] = Math.sin(i);
const instance = new WebAssembly.Instance(compile(built.binary as Uint8Array), { [IMPORTS.module]: { [IMPORTS.memory]: memory, [IMPORTS.wait]: waitImport(memory) } });
const step = instance.exports.step as (tid: number) => number;
for (let i = 0; i < 5; i++) step(0);
const times: number[] = [];
for (let r = 0; r < 21; r++) {
  const t0 = performance.now();
  step(0);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const ms = times[10]!;
const flop = 2 * N * O * C * K * K * HO * HO;
console.log(`${kind} x [${x.join(', ')}] w [${w.join(', ')}] stride ${S}: ${ms.toFixed(2)} ms (fastest ${times[0]!.toFixed(2)}), ${(flop / ms / 1e6).toFixed(1)} GFLOP/s`);
