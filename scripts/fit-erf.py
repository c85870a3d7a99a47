"""Fits the erf coefficients of src/codegen/math-f32.ts (ERF.S and ERF.L).

Lawson's iteration (iteratively reweighted least squares, which converges to the minimax fit)
on 4000 points per interval, against mpmath at 40 digits:
- S(s), s = x^2 on [0, 0.921875]: erf(x) = x + x*S(x^2), S ~ erf(x)/x - 1, absolute error of S
  (= relative error of erf within a factor 1.13);
- L(a) on [0.921875, 4]: erf(a) = 1 - exp(-(a + a*L(a))), L ~ -log(erfc(a))/a - 1, weighted by
  a*erfc(a), the error of erf that an error in L makes.
Prints the coefficients rounded to f32 (shortest round-trip decimal, highest degree first, as
math-f32.ts lists them) and each fit's error in units of 2^-24. Needs numpy and mpmath:
  python3 scripts/fit-erf.py
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40
SMALL, CLAMP = 0.921875, 4.0


def lawson(xs, target, weight, degree, iters=300):
    A = np.stack([xs**k for k in range(degree)], 1)
    w = np.ones(len(xs)) / len(xs)
    for _ in range(iters):
        sw = np.sqrt(w) * weight
        c, *_ = np.linalg.lstsq(A * sw[:, None], target * sw, rcond=None)
        err = np.abs((A @ c - target) * weight)
        w = w * err
        w /= w.sum()
    return c, err.max()


def show(name, c, err):
    coeffs = ", ".join(str(np.float32(v)) for v in reversed(c))
    print(f"{name}: [{coeffs}]  max error {err / 2**-24:.3f} x 2^-24")


# Points cluster near 0 for S, where erf(x)/x - 1 is flattest and relative error matters most.
x = SMALL * (1 - np.cos(np.linspace(0, np.pi / 2, 4000)))
x = x[x > 0]
s_target = np.array([float(mp.erf(mp.mpf(v)) / v - 1) for v in x])
show("S", *lawson(x * x, s_target, np.ones_like(x), 6))

a = np.linspace(SMALL, CLAMP, 4000)
l_target = np.array([float(-mp.log(mp.erfc(mp.mpf(v))) / v - 1) for v in a])
weight = np.array([float(mp.erfc(mp.mpf(v))) for v in a]) * a
show("L", *lawson(a, l_target, weight, 6))
