"""Vectorizable sinh, cosh, arctanh, arctan, arcsin, arccos in LLVM IR (registered into vmath).

fdlibm's algorithms made branch-free (every interval computed, the right one picked
with ``select``), in float64; float32 evaluates the float64 version and rounds once.

- sinh/cosh from expm1/exp of |x| (e^|x|/2 as (e^(|x|/2)/2)*e^(|x|/2) near overflow);
- arctanh(x) = sign * log1p(2|x| + 2x^2/(1-|x|)) / 2 (|x| < 0.5) or log1p(2|x|/(1-|x|)) / 2;
- arctan: reduction to |t| < 7/16 around 0, 0.5, 1, 1.5 or infinity (atanhi/atanlo
  tables of 4 entries), then fdlibm's odd polynomial;
- arcsin/arccos: x + x*R(x^2) with fdlibm's rational R on |x| < 0.5, and the
  ``sqrt((1-|x|)/2)`` forms with a split square root beyond.
"""

from __future__ import annotations

import math

from llvmlite import ir

from graphc.backend.llvm.irutil import F32, F64, I64, call_intr, fconst, horner
from graphc.backend.llvm.vmath import _isnan, call_math, register


def _c(v: float) -> ir.Constant:
    return fconst(F64, v)


def _in64(build):  # noqa: ANN001, ANN202 - a decorator over builders
    """Register ``build`` (written for float64); float32 runs it in float64 and rounds."""

    def run(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
        if x.type == F32:
            return b.fptrunc(build(b, b.fpext(x, F64)), F32)
        return build(b, x)

    return run


def _sign_of(b: ir.IRBuilder, x: ir.Value, v: ir.Value) -> ir.Value:
    return call_intr(b, "copysign", v, x)


def _keep_zero(b: ir.IRBuilder, x: ir.Value, r: ir.Value) -> ir.Value:
    """Odd functions: +-0 maps to itself."""
    return b.select(b.fcmp_ordered("==", x, _c(0.0)), x, r)


@register("sinh")
@_in64
def _sinh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    a22 = b.select(b.fcmp_ordered("<", ax, _c(22.0)), ax, _c(22.0))  # NaN stays NaN
    t = call_math(b, "expm1", a22)
    tp1 = b.fadd(t, _c(1.0))
    small = b.fmul(_c(0.5), b.fsub(b.fmul(_c(2.0), t), b.fdiv(b.fmul(t, t), tp1)))
    mid = b.fmul(_c(0.5), b.fadd(t, b.fdiv(t, tp1)))
    big_arg = b.select(b.fcmp_ordered("<", ax, _c(1420.0)), ax, _c(1420.0))
    w = call_math(b, "exp", b.fmul(_c(0.5), big_arg))
    big = b.fmul(b.fmul(_c(0.5), w), w)
    r = b.select(b.fcmp_ordered("<", ax, _c(22.0)), mid, big)
    r = b.select(b.fcmp_ordered("<", ax, _c(1.0)), small, r)
    r = b.select(_isnan(b, x), x, r)
    return _keep_zero(b, x, _sign_of(b, x, r))


@register("cosh")
@_in64
def _cosh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    half_ln2 = 0.5 * math.log(2.0)
    t = call_math(b, "expm1", b.select(b.fcmp_ordered("<", ax, _c(half_ln2)), ax, _c(half_ln2)))
    w = b.fadd(_c(1.0), t)
    small = b.fadd(_c(1.0), b.fdiv(b.fmul(t, t), b.fadd(w, w)))
    e = call_math(b, "exp", b.select(b.fcmp_ordered("<", ax, _c(22.0)), ax, _c(22.0)))
    mid = b.fadd(b.fmul(_c(0.5), e), b.fdiv(_c(0.5), e))
    big_arg = b.select(b.fcmp_ordered("<", ax, _c(1420.0)), ax, _c(1420.0))
    h = call_math(b, "exp", b.fmul(_c(0.5), big_arg))
    big = b.fmul(b.fmul(_c(0.5), h), h)
    r = b.select(b.fcmp_ordered("<", ax, _c(half_ln2)), small,
                 b.select(b.fcmp_ordered("<", ax, _c(22.0)), mid, big))
    return b.select(_isnan(b, x), x, r)


@register("arctanh")
@_in64
def _arctanh(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    one_m = b.fsub(_c(1.0), ax)
    t2 = b.fadd(ax, ax)
    small = b.fadd(t2, b.fdiv(b.fmul(t2, ax), one_m))
    large = b.fdiv(t2, one_m)
    arg = b.select(b.fcmp_ordered("<", ax, _c(0.5)), small, large)
    r = b.fmul(_c(0.5), call_math(b, "log1p", arg))
    r = b.select(b.fcmp_ordered("==", ax, _c(1.0)), _c(math.inf), r)
    r = b.select(b.fcmp_ordered(">", ax, _c(1.0)), _c(math.nan), r)
    r = _sign_of(b, x, r)
    r = b.select(_isnan(b, x), x, r)
    return _keep_zero(b, x, r)


_AT = [3.33333333333329318027e-01, -1.99999999998764832476e-01, 1.42857142725034663711e-01,
       -1.11111104054623557880e-01, 9.09088713343650656196e-02, -7.69187620504482999495e-02,
       6.66107313738753120669e-02, -5.83357013379057348645e-02, 4.97687799461593236017e-02,
       -3.65315727442169155270e-02, 1.62858201153657823623e-02]
_ATANHI = [4.63647609000806093515e-01, 7.85398163397448278999e-01, 9.82793723247329054082e-01,
           1.57079632679489655800e+00]
_ATANLO = [2.26987774529616870924e-17, 3.06161699786838301793e-17, 1.39033110312309984516e-17,
           6.12323399573676603587e-17]


@register("arctan")
@_in64
def _arctan(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    # Interval id: 0 below 7/16 (no reduction), then 1..4 for atanhi[0..3].
    bounds = [7.0 / 16, 11.0 / 16, 19.0 / 16, 39.0 / 16]
    ge = [b.fcmp_ordered(">=", ax, _c(v)) for v in bounds]
    # t = num/den per interval: x | (2x-1)/(2+x) | (x-1)/(x+1) | (x-1.5)/(1+1.5x) | -1/x
    num = b.select(ge[3], _c(-1.0), b.select(ge[2], b.fsub(ax, _c(1.5)), b.select(
        ge[1], b.fsub(ax, _c(1.0)), b.select(ge[0], b.fsub(b.fadd(ax, ax), _c(1.0)), ax))))
    den = b.select(ge[3], ax, b.select(ge[2], b.fadd(_c(1.0), b.fmul(_c(1.5), ax)), b.select(
        ge[1], b.fadd(ax, _c(1.0)), b.select(ge[0], b.fadd(_c(2.0), ax), _c(1.0)))))
    t = b.fdiv(num, den)
    z = b.fmul(t, t)
    w = b.fmul(z, z)
    s1 = b.fmul(z, horner(b, w, list(reversed(_AT[0::2]))))
    s2 = b.fmul(w, horner(b, w, list(reversed(_AT[1::2]))))
    poly = b.fmul(t, b.fadd(s1, s2))
    hi = b.select(ge[3], _c(_ATANHI[3]), b.select(ge[2], _c(_ATANHI[2]), b.select(
        ge[1], _c(_ATANHI[1]), _c(_ATANHI[0]))))
    lo = b.select(ge[3], _c(_ATANLO[3]), b.select(ge[2], _c(_ATANLO[2]), b.select(
        ge[1], _c(_ATANLO[1]), _c(_ATANLO[0]))))
    reduced = b.fsub(hi, b.fsub(b.fsub(poly, lo), t))
    r = b.select(ge[0], reduced, b.fsub(t, poly))
    r = _sign_of(b, x, r)
    r = b.select(_isnan(b, x), x, r)
    return _keep_zero(b, x, r)


_PS = [1.66666666666666657415e-01, -3.25565818622400915405e-01, 2.01212532134862925881e-01,
       -4.00555345006794114027e-02, 7.91534994289814532176e-04, 3.47933107596021167570e-05]
_QS = [1.0, -2.40339491173441421878e+00, 2.02094576023350569471e+00, -6.88283971605453293030e-01,
       7.70381505559019352791e-02]
_PIO2_HI = 1.57079632679489655800e+00
_PIO2_LO = 6.12323399573676603587e-17
_PIO4_HI = 7.85398163397448278999e-01


def _rat(b: ir.IRBuilder, z: ir.Value) -> ir.Value:
    """fdlibm's R(z) = z*P(z)/Q(z) of asin/acos."""
    p = b.fmul(z, horner(b, z, list(reversed(_PS))))
    q = horner(b, z, list(reversed(_QS)))
    return b.fdiv(p, q)


def _hi_half(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """``v`` with its low 32 bits cleared (so its square is exact)."""
    return b.bitcast(b.and_(b.bitcast(v, I64), ir.Constant(I64, 0xFFFFFFFF00000000)), F64)


@register("arcsin")
@_in64
def _arcsin(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    small = b.fcmp_ordered("<", ax, _c(0.5))
    t = b.select(small, b.fmul(x, x), b.fmul(_c(0.5), b.fsub(_c(1.0), ax)))
    r = _rat(b, t)
    near = b.fadd(x, b.fmul(x, r))
    s = call_intr(b, "sqrt", t)
    top = b.fsub(_c(_PIO2_HI), b.fsub(b.fmul(_c(2.0), b.fadd(s, b.fmul(s, r))), _c(_PIO2_LO)))
    f = _hi_half(b, s)
    c = b.fdiv(b.fsub(t, b.fmul(f, f)), b.fadd(s, f))
    p = b.fsub(b.fmul(b.fmul(_c(2.0), s), r), b.fsub(_c(_PIO2_LO), b.fmul(_c(2.0), c)))
    q = b.fsub(_c(_PIO4_HI), b.fmul(_c(2.0), f))
    mid = b.fsub(_c(_PIO4_HI), b.fsub(p, q))
    far = _sign_of(b, x, b.select(b.fcmp_ordered(">=", ax, _c(0.975)), top, mid))
    res = b.select(small, near, far)
    res = b.select(b.fcmp_ordered(">", ax, _c(1.0)), _c(math.nan), res)
    res = b.select(_isnan(b, x), x, res)
    return _keep_zero(b, x, res)


@register("arccos")
@_in64
def _arccos(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    small = b.fcmp_ordered("<", ax, _c(0.5))
    neg = b.fcmp_ordered("<", x, _c(0.0))
    z = b.select(small, b.fmul(x, x), b.fmul(_c(0.5), b.fsub(_c(1.0), ax)))
    r = _rat(b, z)
    near = b.fsub(_c(_PIO2_HI), b.fsub(x, b.fsub(_c(_PIO2_LO), b.fmul(x, r))))
    s = call_intr(b, "sqrt", z)
    w = b.fsub(b.fmul(r, s), _c(_PIO2_LO))
    low = b.fsub(_c(math.pi), b.fmul(_c(2.0), b.fadd(s, w)))
    df = _hi_half(b, s)
    c = b.fdiv(b.fsub(z, b.fmul(df, df)), b.fadd(s, df))
    high = b.fmul(_c(2.0), b.fadd(df, b.fadd(b.fmul(r, s), c)))
    res = b.select(small, near, b.select(neg, low, high))
    res = b.select(b.fcmp_ordered("==", x, _c(1.0)), _c(0.0), res)  # high's c would be 0/0
    res = b.select(b.fcmp_ordered(">", ax, _c(1.0)), _c(math.nan), res)
    return b.select(_isnan(b, x), x, res)
