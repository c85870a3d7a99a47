import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Emitter, Fn, loadBinaryen, type Local } from '../../../src/codegen/wasm-simd/emitter.ts';
import { VMATH } from '../../../src/codegen/wasm-simd/math.ts';
import { MATH_WGSL, wgslF32 } from '../../../src/codegen/wgsl/math.ts';
import { erf } from '../../../src/ir/erf.ts';
import { openGpu, type Gpu } from '../../../src/runtime/webgpu/device.ts';

// The WGSL exp_f32, log_f32, tanh_f32 and erf_f32 (src/codegen/wgsl/math.ts) on a device, against
// the f64 truth rounded to f32 and against the wasm f32x4 functions, which run the same algorithm.
// Inputs: 65536 bit patterns spread over all of f32 (every 65537th), plus special values.
//
// Tolerances: the GPU may fuse a multiply and an add (WGSL allows it) and may flush subnormals to
// zero, so results are compared where input and result are normal: within 2 ulp of the truth
// (the wasm code is within 1; a fused step may move a result by one more), and the share that
// matches the wasm bits is printed, not asserted. Specials (NaN, ±Inf, ±0, saturation) exactly.

type Name = keyof typeof VMATH;
const NAMES = Object.keys(VMATH) as Name[];
const TRUTH: Record<Name, (x: number) => number> = { exp: Math.exp, log: Math.log, tanh: Math.tanh, erf };

let gpu: Gpu | undefined;
let why: string | undefined;
beforeAll(async () => {
  try {
    gpu = await openGpu();
  } catch (e) {
    if (process.env.KILN_REQUIRE_WEBGPU) throw e;
    why = (e as Error).message;
  }
});
afterAll(() => gpu?.device.destroy());

/** Each function of NAMES over xs on the device: out[f][i]. */
async function onGpu(xs: Float32Array<ArrayBuffer>): Promise<Record<Name, Float32Array>> {
  const device = gpu!.device;
  const code = `${MATH_WGSL}
@group(0) @binding(0) var<storage, read> xs: array<f32>;
@group(0) @binding(1) var<storage, read_write> ys: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= ${xs.length}u) { return; }
  let x = xs[i];
${NAMES.map((n, k) => `  ys[${k * xs.length}u + i] = ${n}_f32(x);`).join('\n')}
}
`;
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) throw new Error(errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n'));
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const input = device.createBuffer({ size: xs.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(input, 0, xs);
  const bytes = xs.byteLength * NAMES.length;
  const output = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: input } },
      { binding: 1, resource: { buffer: output } },
    ],
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(Math.ceil(xs.length / 64));
  pass.end();
  enc.copyBufferToBuffer(output, 0, read, 0, bytes);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const all = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  for (const b of [input, output, read]) b.destroy();
  return Object.fromEntries(NAMES.map((n, k) => [n, all.subarray(k * xs.length, (k + 1) * xs.length)])) as Record<Name, Float32Array>;
}

/** The same functions in a wasm module (as test/codegen/wasm-simd/math.test.ts builds it). */
async function onWasm(xs: Float32Array): Promise<Record<Name, Float32Array>> {
  const b = await loadBinaryen();
  const e = new Emitter(b, { relaxed: false, threads: 1 });
  const m = e.m;
  m.setFeatures(b.Features.SIMD128 | b.Features.NontrappingFPToInt);
  const pages = Math.ceil(xs.byteLength / 65536) + 1;
  m.setMemory(pages, pages, 'mem');
  for (const name of NAMES) {
    const fn = new Fn(e, [b.i32, b.i32]);
    const [ptr, bytes] = fn.params as [Local, Local];
    const i = fn.i32();
    const at = () => e.add(ptr.get(), i.get());
    m.addFunction(name, b.createType([b.i32, b.i32]), b.none, fn.vars, e.for(i, e.i32(0), bytes.get(), 16, [e.vstore(at(), VMATH[name](e, fn, e.vload(at())))]));
    m.addFunctionExport(name, name);
  }
  const bin = m.emitBinary();
  m.dispose();
  const { instance } = await WebAssembly.instantiate(bin as Uint8Array<ArrayBuffer>);
  const ex = instance.exports as Record<Name, (p: number, n: number) => void> & { mem: WebAssembly.Memory };
  const mem = new Float32Array(ex.mem.buffer);
  const out = {} as Record<Name, Float32Array>;
  for (const name of NAMES) {
    mem.set(xs);
    ex[name](0, Math.ceil(xs.length / 4) * 16);
    out[name] = mem.slice(0, xs.length);
  }
  return out;
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);
function ordinal(x: number): number {
  f32[0] = x;
  const i = i32[0]!;
  return i < 0 ? -(i & 0x7fffffff) : i;
}
const MIN_NORMAL = 1.1754943508222875e-38;
const normal = (v: number) => Number.isFinite(v) && (v === 0 || Math.abs(v) >= MIN_NORMAL);

describe('WGSL exp_f32, log_f32, tanh_f32, erf_f32', () => {
  it('writes its constants as exact hex float literals of the f32 the wasm code uses', () => {
    expect(wgslF32(1)).toBe('0x1.000000p0f');
    expect(wgslF32(-0.5)).toBe('-0x1.000000p-1f');
    expect(wgslF32(0.693359375)).toBe('0x1.630000p-1f');
    expect(wgslF32(0.1)).toBe('0x1.99999ap-4f'); // Math.fround(0.1)
    expect(() => wgslF32(1e39)).toThrow(/not a finite f32/);
  });

  it('agree with the truth within 2 ulp on normal values, and with the wasm functions', async () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const xs = new Float32Array(65536);
    new Uint32Array(xs.buffer).forEach((_, k, a) => (a[k] = (k * 65537 + 12345) >>> 0));
    const [gpuOut, wasmOut] = await Promise.all([onGpu(xs), onWasm(xs)]);
    const report: string[] = [];
    for (const name of NAMES) {
      let worst = 0;
      let same = 0;
      let compared = 0;
      for (let i = 0; i < xs.length; i++) {
        const x = xs[i]!;
        const want = Math.fround(TRUTH[name](x));
        const got = gpuOut[name][i]!;
        if (Object.is(got, wasmOut[name][i]) || (Number.isNaN(got) && Number.isNaN(wasmOut[name][i]))) same++;
        if (Number.isNaN(want)) {
          expect(got, `${name}(${x})`).toBeNaN();
          continue;
        }
        if (!normal(x) || !normal(want)) continue;
        compared++;
        worst = Math.max(worst, Math.abs(ordinal(got) - ordinal(want)));
      }
      report.push(`${name} ${worst} ulp (${compared} normal), ${((100 * same) / xs.length).toFixed(2)}% bitwise as wasm`);
      expect(worst, name).toBeLessThanOrEqual(2);
    }
    console.log(`${gpu!.description}: ${report.join('; ')}`);
  });

  it('give the IEEE results at special values', async () => {
    if (why) return void console.warn(`skipped: ${why}`);
    const xs = Float32Array.from([NaN, Infinity, -Infinity, 0, -0, -1, 100, -200, 1e30, -1e30]);
    const y = await onGpu(xs);
    expect(Array.from(y.exp)).toEqual([NaN, Infinity, 0, 1, 1, Math.fround(Math.exp(-1)), Infinity, 0, Infinity, 0]);
    expect(Array.from(y.log)).toEqual([NaN, Infinity, NaN, -Infinity, -Infinity, NaN, Math.fround(Math.log(100)), NaN, Math.fround(Math.log(1e30)), NaN]);
    expect(Array.from(y.tanh)).toEqual([NaN, 1, -1, 0, -0, Math.fround(Math.tanh(-1)), 1, -1, 1, -1]);
    expect(Object.is(y.tanh[4], -0)).toBe(true);
    expect(Array.from(y.erf)).toEqual([NaN, 1, -1, 0, -0, Math.fround(erf(-1)), 1, -1, 1, -1]);
    expect(Object.is(y.erf[4], -0)).toBe(true);
  });
});
