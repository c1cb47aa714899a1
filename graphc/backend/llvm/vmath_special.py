"""Vectorizable tanh, sigmoid, softplus and erf in LLVM IR (built on vmath's exp family).

- tanh(x) = sign(x) * e / (e + 2) with e = expm1(2|x|): no cancellation anywhere,
  so a few ulp over the whole range (|x| past the rounding-to-1 point is clamped).
- sigmoid(x) = 1/(1+e) or e/(1+e) with e = exp(-|x|), exact in both tails.
- softplus(x) = max(x, 0) + log1p(exp(-|x|)), never overflowing.
- erf: fdlibm's rational approximations (float64), made branch-free by choosing
  the coefficients per element with ``select``; float32 evaluates it in float64.
"""

from __future__ import annotations

import math

from llvmlite import ir

from graphc.backend.llvm.irutil import F32, F64, I32, I64, call_intr, fconst, fmuladd, horner, select_horner
from graphc.backend.llvm.vmath import _EXPM1_Q32, _clamp, _isnan, call_math, expm1_core, register

# float32 tanh: expm1(2a) reduced as 2a = k*ln2 + 2h with |h| <= ln2/4, so a - k*ln2/2 is one
# FMA (float32 ln2/2 is off by ~1e-9: k <= 29 moves e^(2a) by < 6e-8 relative where the
# result is within 2^-25 of 1, by ~2e-9 at k = 1). expm1(2h) = 2h + (2h)^2 * Q(2h) with Q of
# degree 4, Q(0) = 1/2 exactly and the rest of least maximum relative error on |2h| <= 0.3466
# (0.23 ulp; fitted in float64 by iteratively reweighted least squares). Q(0) exact matters:
# near 0 (k = 0) e/(e+2) passes expm1's relative error on whole, and the unconstrained fit
# made a few results 3 ulp off. The coefficients absorb the powers of 2 and the overall factor
# 2 moves into 2^(k+1). All float32 inputs checked against a float64 reference: <= 2 ulp.
_TANH_Q = list(reversed(_EXPM1_Q32))  # ascending; exp (vmath) uses the same fit
_TANH_QH = [q * 2.0 ** (i + 1) for i, q in enumerate(_TANH_Q)]  # (2h)^2 Q(2h) / 2 = h^2 * Q'(h)
_MAGIC32 = 1.5 * 2.0 ** 23  # adding it rounds a float32 below 2^22 to an integer


def _tanh32(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """tanh = e/(e+2), e = expm1(2|x|) = 2^(k+1) * (h + h^2 Q'(h)) + (2^k - 1)."""
    ty = x.type  # float32, or a vector of them (lane-wise)
    ity = ir.VectorType(I32, ty.count) if isinstance(ty, ir.VectorType) else I32
    c = lambda v: fconst(ty, v)  # noqa: E731
    a = call_intr(b, "fabs", x)
    a = b.select(b.fcmp_ordered(">", a, c(10.0)), c(10.0), a)  # tanh(10) rounds to 1; NaN stays
    t = fmuladd(b, a, c(2.0 / math.log(2.0)), c(_MAGIC32))  # k = rint(2a/ln2) in t's low bits
    k = b.fsub(t, c(_MAGIC32))
    h = fmuladd(b, b.fneg(k), c(math.log(2.0) / 2.0), a)
    ph = fmuladd(b, b.fmul(h, h), horner(b, h, list(reversed(_TANH_QH))), h)
    # 2^(k+1) from t's bits (k sits in its low mantissa bits): NaN gives garbage bits, no poison.
    ik = b.sub(b.bitcast(t, ity), b.bitcast(c(_MAGIC32), ity))
    s2 = b.bitcast(b.shl(b.add(ik, ir.Constant(ity, 128)), ir.Constant(ity, 23)), ty)
    e = fmuladd(b, s2, ph, fmuladd(b, s2, c(0.5), c(-1.0)))
    return call_intr(b, "copysign", b.fdiv(e, b.fadd(e, c(2.0))), x)


@register("tanh")
def _tanh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ty = x.type
    if getattr(ty, "element", ty) == F32:
        return _tanh32(b, x)
    t = 20.0  # tanh(t) rounds to 1
    a = call_intr(b, "fabs", x)
    a = b.select(b.fcmp_ordered(">", a, fconst(ty, t)), fconst(ty, t), a)  # NaN stays NaN
    e = expm1_core(b, b.fadd(a, a))
    r = b.fdiv(e, b.fadd(e, fconst(ty, 2.0)))
    return call_intr(b, "copysign", r, x)


@register("sigmoid")
def _sigmoid(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ty = x.type
    e = call_math(b, "exp", b.fneg(call_intr(b, "fabs", x)))
    s = b.fdiv(fconst(ty, 1.0), b.fadd(fconst(ty, 1.0), e))
    return b.select(b.fcmp_ordered(">=", x, fconst(ty, 0.0)), s, b.fmul(e, s))


@register("softplus")
def _softplus(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ty = x.type
    e = call_math(b, "exp", b.fneg(call_intr(b, "fabs", x)))
    pos = b.select(b.fcmp_ordered(">", x, fconst(ty, 0.0)), x, fconst(ty, 0.0))
    return b.fadd(pos, call_math(b, "log1p", e))


# fdlibm s_erf.c coefficients.
_ERX = 8.45062911510467529297e-01
_PP = [1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05]
_QQ = [3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06]
_PA = [-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03]
_QA = [1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02]
_RA = [-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
       -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
       -8.12874355063065934246e+01, -9.81432934416914548592e+00]
_SA = [1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
       6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
       6.57024977031928170135e+00, -6.04244152148580987438e-02]
_RB = [-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
       -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
       -4.83519191608651397019e+02]
_SB = [3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
       3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
       -2.24409524465858183362e+01]


def _hi_first(coeffs: list[float], n: int) -> list[float]:
    """Ascending coefficients as a highest-first list of length ``n`` (zero padded)."""
    return [0.0] * (n - len(coeffs)) + list(reversed(coeffs))


def _erf64(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ty = F64
    c = lambda v: fconst(ty, v)  # noqa: E731
    ax = call_intr(b, "fabs", x)
    # |x| < 1.25: x + x*P(x^2)/Q(x^2) below 0.84375, erx + P(|x|-1)/Q(|x|-1) above.
    small = b.fcmp_ordered("<", ax, c(0.84375))
    t = b.select(small, b.fmul(x, x), b.fsub(ax, c(1.0)))
    num = select_horner(b, small, t, _hi_first(_PP, 7), _hi_first(_PA, 7))
    den = select_horner(b, small, t, _hi_first([1.0] + _QQ, 7), _hi_first([1.0] + _QA, 7))
    ratio = b.fdiv(num, den)
    low = b.select(small, fmuladd(b, x, ratio, x), call_intr(b, "copysign", b.fadd(c(_ERX), ratio), x))
    # 1.25 <= |x|: 1 - erfc(|x|), erfc from exp(-x^2 - 0.5625 + R/S)/|x|; past 6 erf rounds to 1.
    xa = _clamp(b, ax, 1.25, 6.0)
    s = b.fdiv(c(1.0), b.fmul(xa, xa))
    near = b.fcmp_ordered("<", xa, c(1.0 / 0.35))
    big_r = select_horner(b, near, s, _hi_first(_RA, 8), _hi_first(_RB, 8))
    big_s = select_horner(b, near, s, _hi_first([1.0] + _SA, 9), _hi_first([1.0] + _SB, 9))
    # z: xa with its low 32 bits cleared, so z*z is exact and the exp argument split is accurate.
    z = b.bitcast(b.and_(b.bitcast(xa, I64), ir.Constant(I64, 0xFFFFFFFF00000000)), F64)
    e1 = call_math(b, "exp", b.fsub(b.fneg(b.fmul(z, z)), c(0.5625)))
    arg2 = fmuladd(b, b.fsub(z, xa), b.fadd(z, xa), b.fdiv(big_r, big_s))
    r = b.fmul(e1, call_math(b, "exp", arg2))
    high = call_intr(b, "copysign", b.fsub(c(1.0), b.fdiv(r, xa)), x)
    res = b.select(b.fcmp_ordered("<", ax, c(1.25)), low, high)
    return b.select(_isnan(b, x), x, res)


@register("erf")
def _erf(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    if x.type == F64:
        return _erf64(b, x)
    return b.fptrunc(_erf64(b, b.fpext(x, F64)), F32)

