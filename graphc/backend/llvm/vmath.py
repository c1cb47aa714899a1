"""Vectorizable math in LLVM IR: exp, expm1, exp2, log, log1p, log2, log10.

LLVM lowers ``llvm.exp``/``llvm.log`` to scalar libm calls, which stops the
loop vectorizer (no vector math library is available to this LLVM). These are
branch-free instead: range reduction, a polynomial, ``select`` for the special
cases, and bit tricks that stay in vector registers (no float->int64
conversion, which AVX2 lacks). Each is an internal ``alwaysinline`` function,
so after inlining an elementwise loop over them vectorizes.

Algorithms: exp/expm1 reduce ``x = k*ln2 + r`` (|r| <= ln2/2, ln2 split in a
high and low part) and evaluate the Taylor series of expm1(r) one degree past
the precision (float32: r^8, float64: r^14); ``2^k`` is built from its bits,
in two halves so results reaching the subnormal range round correctly. The
logarithms use the musl/fdlibm reduction ``x = 2^k * (1+f)``, ``f`` in
[sqrt(2)/2-1, sqrt(2)-1], and the ``s = f/(2+f)`` series; log1p adds musl's
correction term for the rounding of ``1+x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from llvmlite import ir

from graphc.backend.llvm.irutil import F32, I32, I64, fconst, fmuladd, horner, intrinsic, suffix

Builder = Callable[[ir.IRBuilder, ir.Value], ir.Value]
_BUILDERS: dict[str, Builder] = {}


def math_function(module: ir.Module, name: str, ty: ir.Type) -> ir.Function:
    """The module's ``gc.<name>.<f32|f64>`` function, defined on first use."""
    fname = f"gc.{name}.{suffix(ty)}"
    fn = module.globals.get(fname)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(ty, [ty]), name=fname)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(_BUILDERS[name](b, fn.args[0]))
    return fn


def call_math(b: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    return b.call(math_function(b.module, name, x.type), [x])


def has_math(name: str) -> bool:
    return name in _BUILDERS


def register(name: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = fn
        return fn

    return deco


# -- bit-level helpers ------------------------------------------------------------------
class _Fmt:
    """Constants of one float format."""

    def __init__(self, ty: ir.Type) -> None:
        self.ty = ty
        # A vector type (the builders work lane-wise): its element decides, constants splat.
        self.f32 = getattr(ty, "element", ty) == F32
        self.ity = I32 if self.f32 else I64
        if isinstance(ty, ir.VectorType):
            self.ity = ir.VectorType(self.ity, ty.count)
        self.mant = 23 if self.f32 else 52
        self.bias = 127 if self.f32 else 1023
        self.magic = 1.5 * 2.0 ** self.mant  # adding it rounds to an integer kept in low bits

    def c(self, v: float) -> ir.Constant:
        return fconst(self.ty, v)

    def i(self, v: int) -> ir.Constant:
        return ir.Constant(self.ity, v & ((1 << (32 if self.f32 else 64)) - 1))


def _isnan(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return b.fcmp_unordered("uno", x, x)


def _clamp(b: ir.IRBuilder, x: ir.Value, lo: float, hi: float) -> ir.Value:
    """``x`` clamped into [lo, hi]; NaN becomes ``lo`` (callers restore it)."""
    x = b.select(b.fcmp_ordered(">", x, fconst(x.type, hi)), fconst(x.type, hi), x)
    return b.select(b.fcmp_unordered("<", x, fconst(x.type, lo)), fconst(x.type, lo), x)


def _round_int(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value,
               scale: float | None = None) -> tuple[ir.Value, ir.Value]:
    """(rint(x) as float, as integer) for |x| < 2^(mant-1), without fptosi; of x*scale when given."""
    if scale is None:
        t = b.fadd(x, fmt.c(fmt.magic))
    else:
        t = fmuladd(b, x, fmt.c(scale), fmt.c(fmt.magic))
    k = b.fsub(t, fmt.c(fmt.magic))
    ik = b.sub(b.bitcast(t, fmt.ity), b.bitcast(fmt.c(fmt.magic), fmt.ity))
    return k, ik


def _pow2(b: ir.IRBuilder, fmt: _Fmt, ik: ir.Value) -> ir.Value:
    """2^ik as a float, for ik in the normal exponent range."""
    e = b.shl(b.add(ik, fmt.i(fmt.bias)), fmt.i(fmt.mant))
    return b.bitcast(e, fmt.ty)


def _scale(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value, ik: ir.Value) -> ir.Value:
    """x * 2^ik for ik up to twice the exponent range (two steps: each factor is normal)."""
    k1 = b.ashr(ik, fmt.i(1))
    k2 = b.sub(ik, k1)
    return b.fmul(b.fmul(x, _pow2(b, fmt, k1)), _pow2(b, fmt, k2))


def _ldexp(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value, ik: ir.Value) -> ir.Value:
    """x * 2^ik rounded once: ``llvm.ldexp``, which AVX-512 does in one instruction (vscalef,
    subnormal and overflowing results included; 2 ops instead of _scale's 9). Without AVX-512
    LLVM calls libm's ldexp per element, so _scale there."""
    from graphc.backend.llvm.jit import host_cpu

    if "+avx512f" not in host_cpu()[1].split(","):
        return _scale(b, fmt, x, ik)
    ity = ir.VectorType(I32, fmt.ty.count) if isinstance(fmt.ty, ir.VectorType) else I32
    if not fmt.f32:
        ik = b.trunc(ik, ity)  # |ik| < 1100 here
    fn = intrinsic(b.module, f"llvm.ldexp.{suffix(fmt.ty)}.{suffix(ity)}", fmt.ty, [fmt.ty, ity])
    return b.call(fn, [x, ik])


_LN2 = math.log(2.0)
_LOG2E = 1.0 / _LN2
# ln2 split so that k*LN2_HI is exact for the k that occur.
_LN2_HI = {True: 0.693359375, False: 6.93147180369123816490e-01}
_LN2_LO = {True: -2.12194440e-4, False: 1.90821492927058770002e-10}


# float32 expm1(r) = r + r^2 * Q(r): Q of degree 4, Q(0) = 1/2 exactly, the rest of least maximum
# relative error on |r| <= 0.3466 (0.23 ulp; one FMA less than Taylor). exp uses it: <= 1 ulp
# over every float32 (against a float64 reference), as with Taylor.
_EXPM1_Q32 = [0.001389821330834334, 0.00836603919287359, 0.041666854267850065, 0.1666654872072961, 0.5]


def _expm1_poly(b: ir.IRBuilder, fmt: _Fmt, r: ir.Value, minimax: bool = False) -> ir.Value:
    """expm1(r) for |r| <= ln2/2 by its Taylor series (float32 ``minimax``: _EXPM1_Q32)."""
    top = 7 if fmt.f32 else 13  # truncation error < 0.3 ulp over |r| <= ln2/2
    coeffs = [1.0 / math.factorial(n) for n in range(top, 1, -1)]  # 1/top! ... 1/2!
    q = horner(b, r, _EXPM1_Q32 if minimax and fmt.f32 else coeffs)
    return fmuladd(b, b.fmul(r, r), q, r)


def _reduce(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """x = k*ln2 + r: returns (r, integer k)."""
    # rint(x*log2e) with the magic constant added in the same FMA (one op less, and the
    # product is not rounded first).
    k, ik = _round_int(b, fmt, x, scale=_LOG2E)
    nk = b.fneg(k)
    r = fmuladd(b, nk, fmt.c(_LN2_HI[fmt.f32]), x)
    r = fmuladd(b, nk, fmt.c(_LN2_LO[fmt.f32]), r)
    return r, ik


def _clamp_keep_nan(b: ir.IRBuilder, x: ir.Value, lo: float, hi: float) -> ir.Value:
    """``x`` clamped into [lo, hi]; NaN stays NaN and then propagates through the float
    arithmetic (the integer bit tricks on it give garbage, never poison)."""
    x = b.select(b.fcmp_ordered(">", x, fconst(x.type, hi)), fconst(x.type, hi), x)
    return b.select(b.fcmp_ordered("<", x, fconst(x.type, lo)), fconst(x.type, lo), x)


@register("exp")
def _exp(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt = _Fmt(x.type)
    lo, hi = (-104.0, 89.0) if fmt.f32 else (-746.0, 710.0)
    xc = _clamp_keep_nan(b, x, lo, hi)
    r, ik = _reduce(b, fmt, xc)
    e = b.fadd(fmt.c(1.0), _expm1_poly(b, fmt, r, minimax=True))
    return _ldexp(b, fmt, e, ik)


@register("exp2")
def _exp2(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt = _Fmt(x.type)
    lo, hi = (-151.0, 129.0) if fmt.f32 else (-1076.0, 1025.0)
    xc = _clamp(b, x, lo, hi)
    k, ik = _round_int(b, fmt, xc)
    r = b.fmul(b.fsub(xc, k), fmt.c(_LN2))
    e = b.fadd(fmt.c(1.0), _expm1_poly(b, fmt, r))
    res = _scale(b, fmt, e, ik)
    return b.select(_isnan(b, x), x, res)


def expm1_core(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """expm1 for x already in [-t, 80] (t: 18 for float32, 40 for float64), NaN propagating:
    2^k * expm1(r) + (2^k - 1), exact in its parts while 2^k is a normal number."""
    fmt = _Fmt(x.type)
    r, ik = _reduce(b, fmt, x)
    p = _expm1_poly(b, fmt, r)
    s = _pow2(b, fmt, ik)
    return fmuladd(b, s, p, b.fsub(s, fmt.c(1.0)))


@register("expm1")
def _expm1(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt = _Fmt(x.type)
    # Below -t expm1 rounds to -1, which the clamped formula gives; past 80 (where 2^k
    # would overflow float32) exp's two-step scaling of the same reduction takes over.
    t = 18.0 if fmt.f32 else 40.0
    top = 89.0 if fmt.f32 else 710.0
    xc = _clamp_keep_nan(b, x, -t, top)
    r, ik = _reduce(b, fmt, xc)
    p = _expm1_poly(b, fmt, r)
    limit = fmt.i(120)
    s = _pow2(b, fmt, b.select(b.icmp_signed(">", ik, limit), limit, ik))
    small = fmuladd(b, s, p, b.fsub(s, fmt.c(1.0)))
    big = _scale(b, fmt, b.fadd(fmt.c(1.0), p), ik)
    res = b.select(b.fcmp_ordered(">", xc, fmt.c(80.0)), big, small)
    return b.select(b.fcmp_ordered("==", x, fmt.c(0.0)), x, res)  # zero keeps its sign


def call_exp(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    return call_math(b, "exp", x)


# -- logarithms ---------------------------------------------------------------------------
_LG64 = [6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
         2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
         1.479819860511658591e-01]
_LG32 = [float.fromhex("0xaaaaaa.0p-24"), float.fromhex("0xccce13.0p-25"),
         float.fromhex("0x91e9ee.0p-25"), float.fromhex("0xf89e26.0p-26")]
_LOG_LN2_HI = {True: 6.9313812256e-01, False: 6.93147180369123816490e-01}
_LOG_LN2_LO = {True: 9.0580006145e-06, False: 1.90821492927058770002e-10}
# sqrt(2)/2 as the bits that move the mantissa range to [sqrt(2)/2, sqrt(2)).
_SQRTH_BITS = {True: 0x3F3504F3, False: 0x3FE6A09E << 32}
_ONE_BITS = {True: 0x3F800000, False: 0x3FF00000 << 32}


def _split(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """x (positive, normal) = 2^k * m with m in [sqrt(2)/2, sqrt(2)): returns (k, m)."""
    ix = b.bitcast(x, fmt.ity)
    ix = b.add(ix, fmt.i(_ONE_BITS[fmt.f32] - _SQRTH_BITS[fmt.f32]))
    k = b.sub(b.lshr(ix, fmt.i(fmt.mant)), fmt.i(fmt.bias))
    mbits = b.add(b.and_(ix, fmt.i((1 << fmt.mant) - 1)), fmt.i(_SQRTH_BITS[fmt.f32]))
    return k, b.bitcast(mbits, fmt.ty)


def _log_parts(b: ir.IRBuilder, fmt: _Fmt, f: ir.Value) -> tuple[ir.Value, ir.Value]:
    """For log(1+f): (hfsq, s*(hfsq+R)) so that log(1+f) = f - hfsq + s*(hfsq+R)."""
    s = b.fdiv(f, b.fadd(fmt.c(2.0), f))
    z = b.fmul(s, s)
    w = b.fmul(z, z)
    lg = _LG32 if fmt.f32 else _LG64
    t1 = b.fmul(w, horner(b, w, list(reversed(lg[1::2]))))
    t2 = b.fmul(z, horner(b, w, list(reversed(lg[0::2]))))
    big_r = b.fadd(t2, t1)
    hfsq = b.fmul(b.fmul(fmt.c(0.5), f), f)
    return hfsq, b.fmul(s, b.fadd(hfsq, big_r))


def _log_reduce(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """x = 2^k (1+f) for positive finite x, subnormals included: returns (float k, f)."""
    tiny = 2.0 ** (-126 if fmt.f32 else -1022)
    up = 25 if fmt.f32 else 54
    sub = b.fcmp_ordered("<", x, fmt.c(tiny))
    xs = b.select(sub, b.fmul(x, fmt.c(2.0 ** up)), x)
    k, m = _split(b, fmt, xs)
    k = b.sub(k, b.select(sub, fmt.i(up), fmt.i(0)))
    return b.sitofp(k, fmt.ty), b.fsub(m, fmt.c(1.0))


def _log_specials(b: ir.IRBuilder, fmt: _Fmt, x: ir.Value, res: ir.Value, at: float) -> ir.Value:
    """log-like results at the domain edge ``at`` (-inf), below it (NaN), +inf and NaN."""
    ty = fmt.ty
    res = b.select(b.fcmp_ordered("==", x, fmt.c(at)), fconst(ty, -math.inf), res)
    res = b.select(b.fcmp_ordered("<", x, fmt.c(at)), fconst(ty, math.nan), res)
    res = b.select(b.fcmp_ordered("==", x, fmt.c(math.inf)), x, res)
    return b.select(_isnan(b, x), x, res)


def _log_core(b: ir.IRBuilder, x: ir.Value) -> tuple[_Fmt, ir.Value, ir.Value, ir.Value]:
    """(fmt, k, f - hfsq, s*(hfsq+R)): log(x) = k*ln2 + (f - hfsq) + s*(hfsq+R)."""
    fmt = _Fmt(x.type)
    dk, f = _log_reduce(b, fmt, x)
    hfsq, tail = _log_parts(b, fmt, f)
    return fmt, dk, b.fsub(f, hfsq), tail


@register("log")
def _log(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt = _Fmt(x.type)
    dk, f = _log_reduce(b, fmt, x)
    hfsq, tail = _log_parts(b, fmt, f)
    # musl's order: s*(hfsq+R) + k*ln2_lo - hfsq + f + k*ln2_hi
    v = fmuladd(b, dk, fmt.c(_LOG_LN2_LO[fmt.f32]), tail)
    v = b.fadd(b.fsub(v, hfsq), f)
    v = fmuladd(b, dk, fmt.c(_LOG_LN2_HI[fmt.f32]), v)
    return _log_specials(b, fmt, x, v, 0.0)


@register("log2")
def _log2(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt, dk, head, tail = _log_core(b, x)
    lf = b.fadd(head, tail)
    v = fmuladd(b, lf, fmt.c(_LOG2E), dk)
    return _log_specials(b, fmt, x, v, 0.0)


@register("log10")
def _log10(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt, dk, head, tail = _log_core(b, x)
    lf = b.fadd(head, tail)
    v = fmuladd(b, dk, fmt.c(math.log10(2.0)), b.fmul(lf, fmt.c(1.0 / math.log(10.0))))
    return _log_specials(b, fmt, x, v, 0.0)


@register("log1p")
def _log1p(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    fmt = _Fmt(x.type)
    one = fmt.c(1.0)
    u = b.fadd(one, x)
    # Keep u finite and positive for the bit manipulation; the specials fix the rest.
    ok = b.and_(b.fcmp_ordered(">", u, fmt.c(0.0)), b.fcmp_ordered("<", u, fmt.c(math.inf)))
    us = b.select(ok, u, one)
    k, m = _split(b, fmt, us)
    # Correction for the rounding of 1+x: log(1+x) - log(u) ~ c/u.
    c = b.select(b.icmp_signed(">=", k, fmt.i(2)), b.fsub(one, b.fsub(us, x)),
                 b.fsub(x, b.fsub(us, one)))
    c = b.fdiv(c, us)
    c = b.select(b.icmp_signed("<", k, fmt.i(25 if fmt.f32 else 54)), c, fmt.c(0.0))
    kzero = b.icmp_signed("==", k, fmt.i(0))
    f = b.select(kzero, x, b.fsub(m, one))
    c = b.select(kzero, fmt.c(0.0), c)
    dk = b.sitofp(k, fmt.ty)
    hfsq, tail = _log_parts(b, fmt, f)
    v = b.fadd(tail, fmuladd(b, dk, fmt.c(_LOG_LN2_LO[fmt.f32]), c))
    v = b.fadd(b.fsub(v, hfsq), f)
    v = fmuladd(b, dk, fmt.c(_LOG_LN2_HI[fmt.f32]), v)
    v = b.select(b.fcmp_ordered("==", x, fmt.c(0.0)), x, v)  # keeps -0
    return _log_specials(b, fmt, x, v, -1.0)


# The special functions register themselves here on import.
from graphc.backend.llvm import vmath_arc, vmath_special, vmath_trig  # noqa: E402,F401
