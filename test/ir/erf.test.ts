import { describe, expect, it } from 'vitest';
import { erf } from '../../src/ir/erf.ts';

// The f64 erf against mpmath.erf at 40 digits, rounded to f64 (mpmath 1.3.0:
// `float(mpmath.erf(mpmath.mpf(x)))`). Each range of the implementation is sampled (the Taylor
// series below 0.5, the positive series to 2, the continued fraction beyond) with both sides of
// each switch. Tolerance: 5e-16 relative, a few f64 ulps; what was measured on 3500 points is
// 4.6e-16.
const MPMATH: [number, number][] = [
  [1e-300, 1.1283791670955126e-300],
  [1e-10, 1.1283791670955126e-10],
  [0.01, 0.011283415555849618],
  [0.1, 0.1124629160182849],
  [0.25, 0.27632639016823696],
  [0.4999, 0.5204119951613866],
  [0.5, 0.5204998778130465],
  [0.75, 0.7111556336535151],
  [1, 0.8427007929497149],
  [1.25, 0.9229001282564583],
  [1.5, 0.9661051464753108],
  [1.75, 0.9866716712191824],
  [1.9999, 0.9953201979070294],
  [2, 0.9953222650189527],
  [2.5, 0.999593047982555],
  [3, 0.9999779095030014],
  [3.5, 0.9999992569016276],
  [4, 0.9999999845827421],
  [4.5, 0.9999999998033839],
  [5, 0.9999999999984626],
  [5.5, 0.9999999999999927],
  [5.9, 0.9999999999999999],
];

describe('erf (f64)', () => {
  it.each(MPMATH)('erf(%d) = %d', (x, want) => {
    expect(Math.abs(erf(x) - want) / want).toBeLessThanOrEqual(5e-16);
    expect(erf(-x)).toBe(-erf(x));
  });

  it('is 2x/√π near 0, ±0 and ±1 at the ends, NaN for NaN', () => {
    // erf(x) = 2x/√π·(1 - x²/3 + …): below 1e-8 the correction is under an f64 ulp. Subnormal
    // results are as exact as their fixed spacing (5e-324) allows.
    for (const x of [1e-20, -3e-15, 2.2e-308, 1e-310, 5e-324]) {
      const want = (2 / Math.sqrt(Math.PI)) * x;
      expect(Math.abs(erf(x) - want)).toBeLessThanOrEqual(Math.max(2.3e-16 * Math.abs(want), 5e-324));
    }
    expect(Object.is(erf(0), 0)).toBe(true);
    expect(Object.is(erf(-0), -0)).toBe(true);
    expect([erf(6), erf(-6), erf(30), erf(Infinity), erf(-Infinity)]).toEqual([1, -1, 1, 1, -1]);
    expect(erf(NaN)).toBeNaN();
  });

  it('is monotone across the switches between expansions', () => {
    for (const at of [0.5, 2, 6]) {
      let prev = erf(at - 1e-6);
      for (let x = at - 1e-6; x < at + 1e-6; x += 1e-8) {
        const y = erf(x);
        expect(y).toBeGreaterThanOrEqual(prev);
        prev = y;
      }
    }
  });
});
