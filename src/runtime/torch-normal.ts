import { fmaF32, type TorchGenerator } from './torch-generator.ts';

/**
 * `tensor.normal_(mean, std)` of a contiguous f32 tensor on PyTorch's CPU (1.13), bit for bit:
 * torch.nn.init.normal_, which nn.Embedding's reset_parameters calls. PyTorch takes one of two
 * paths by size:
 * - 16 elements or more (normal_fill_AVX2): every element first gets a uniform f32 in [0, 1) (one
 *   32-bit draw each); then each block of 16 becomes 8 Box–Muller pairs, u1 from the first half and
 *   u2 from the second, computed in f32 by avx_mathfun.h's log256_ps and sincos256_ps (Cephes
 *   polynomials). A size that is not a multiple of 16 draws 16 fresh uniforms for the last 16
 *   elements and redoes them. GCC builds that file with FMA and contracts every product that
 *   feeds a sum into a fused multiply-add; so does this port, each f32 step rounded where the
 *   machine rounds it (checked against 131,072 of PyTorch's normals: every bit equal).
 * - Fewer (at::normal_distribution<double>): Box–Muller in f64 from two 53-bit uniforms, the
 *   sine half kept in the generator for the next element, even one of a later tensor.
 */
export function normalFill(g: TorchGenerator, n: number, mean: number, std: number): Float32Array {
  const out = new Float32Array(n);
  if (n < 16) {
    for (let i = 0; i < n; i++) out[i] = g.normalDouble() * std + mean;
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = g.uniform01f();
  const [m, s] = [Math.fround(mean), Math.fround(std)];
  for (let i = 0; i + 16 <= n; i += 16) normal16(out, i, m, s);
  if (n % 16) {
    for (let i = n - 16; i < n; i++) out[i] = g.uniform01f();
    normal16(out, n - 16, m, s);
  }
  return out;
}

const f = Math.fround;
const TWO_PI = f(2 * Math.PI);

/** normal_fill_16_AVX2: 8 pairs from the uniforms at d[at..at+16). */
function normal16(d: Float32Array, at: number, mean: number, std: number): void {
  for (let j = 0; j < 8; j++) {
    const radius = f(Math.sqrt(f(-2 * log256(f(1 - d[at + j]!)))));
    const [sin, cos] = sincos256(f(TWO_PI * d[at + j + 8]!));
    d[at + j] = fmaF32(f(radius * cos), std, mean);
    d[at + j + 8] = fmaF32(f(radius * sin), std, mean);
  }
}

// avx_mathfun.h's constants, as the f32s it stores.
const LOG_P = [7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1].map(f);
const [LOG_Q1, LOG_Q2, SQRTHF] = [-2.1219444e-4, 0.693359375, 0.707106781186547524].map(f) as [number, number, number];
const FOPI = f(1.27323954473516);
const DP = [-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8].map(f);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f) as [number, number, number];
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f) as [number, number, number];

const view = new DataView(new ArrayBuffer(4));
const bitsOf = (x: number) => (view.setFloat32(0, x), view.getUint32(0));
const ofBits = (b: number) => (view.setUint32(0, b >>> 0), view.getFloat32(0));

/** log256_ps for x in (0, 1]: exponent and mantissa in [√½, √2), then a degree-9 polynomial. */
function log256(x: number): number {
  x = Math.max(x, ofBits(0x00800000));
  let e = f(((bitsOf(x) >>> 23) - 0x7f) + 1);
  x = ofBits((bitsOf(x) & ~0x7f800000) | 0x3f000000);
  const small = x < SQRTHF;
  const tmp = small ? x : 0;
  x = f(f(x - 1) + tmp);
  if (small) e = f(e - 1);
  const z = f(x * x);
  let y = LOG_P[0]!;
  for (let k = 1; k < LOG_P.length; k++) y = fmaF32(y, x, LOG_P[k]!);
  y = f(y * x);
  y = fmaF32(y, z, f(e * LOG_Q1));
  y = fmaF32(-z, 0.5, y);
  x = f(x + y);
  return fmaF32(e, LOG_Q2, x);
}

/** sincos256_ps for x in [0, 2π): octant j, the reduced argument, the two polynomials. */
function sincos256(x: number): [number, number] {
  let j = Math.trunc(f(x * FOPI));
  j = (j + 1) & ~1;
  const y = f(j);
  for (const dp of DP) x = fmaF32(y, dp, x);
  const z = f(x * x);
  let c = fmaF32(fmaF32(COS_P[0], z, COS_P[1]), z, COS_P[2]);
  c = f(c * z);
  c = f(fmaF32(c, z, -f(z * 0.5)) + 1);
  const s = fmaF32(f(fmaF32(fmaF32(SIN_P[0], z, SIN_P[1]), z, SIN_P[2]) * z), x, x);
  const swap = (j & 2) !== 0;
  const sin = swap ? c : s;
  const cos = swap ? s : c;
  return [j & 4 ? -sin : sin, (~(j - 2) & 4) !== 0 ? -cos : cos];
}
