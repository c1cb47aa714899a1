"""Vectorizable floating pow in LLVM IR: ``x**y`` as NumPy computes it, to ~1 ulp.

C99/NumPy special cases by ``select`` (0**0 == 1, 1**nan == 1, a negative base with an
odd integer exponent flips the sign, with a non-integer one gives NaN, inf/zero rules);
the core is ``exp(y * log|x|)`` with enough extra precision that the product's error
stays below the result's last bit (|y log x| reaches 745):

- float32 evaluates log2 and exp2 in float64 without division (musl powf's 16-entry
  table reduction for log2, Taylor polynomials; <= 1 ulp);
- float64 follows ARM's optimized-routines pow: log(x) as a double-double from a
  128-entry table (invc with 9 bits, so ``r = z*invc - 1`` is exact with an FMA;
  log(c) as hi + tail, computed here with ``decimal``), ``y*log x`` as a
  double-double (FMA), then ``exp(hi) * (1 + lo)`` with vmath's exp (<= 2 ulp).
  No division, unlike fdlibm's pow (two, and a latency chain twice as long).
"""

from __future__ import annotations

import decimal
import functools
import math

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import F32, F64, I64, call_intr, fconst, fmuladd, horner
from graphc.backend.llvm.vmath import _Fmt, _round_int, _scale


def _c(v: float) -> ir.Constant:
    return fconst(F64, v)


# -- pow -----------------------------------------------------------------------------------
def pow_function(module: ir.Module, ty: ir.Type) -> ir.Function:
    fname = f"gc.pow.{'f32' if ty == F32 else 'f64'}"
    fn = module.globals.get(fname)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(ty, [ty, ty]), name=fname)
    fn.linkage = "internal"
    fn.attributes.add("alwaysinline")
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(_pow(b, fn.args[0], fn.args[1]))
    return fn


def call_pow(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.call(pow_function(b.module, x.type), [x, y])


def _is_int(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    return b.fcmp_ordered("==", call_intr(b, "floor", v), v)


def _pow(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    ty = x.type
    c = lambda v: fconst(ty, v)  # noqa: E731
    ax = call_intr(b, "fabs", x)
    # The cores give log|x| = -inf/+inf for |x| = 0/inf, so 2^(y log|x|) already follows
    # C99 Annex F for zero, infinite base or exponent; NaN lanes are replaced below.
    r = _powf_core(b, ax, y) if ty == F32 else _pow_core64(b, ax, y)
    # Negative base: an odd integer exponent flips the sign, a non-integer one is NaN
    # (not for -inf: (-inf)**0.5 is inf). floor(inf) == inf: infinities count as even.
    y_int = _is_int(b, y)
    half = b.fmul(y, c(0.5))
    odd = b.and_(y_int, b.fcmp_unordered("!=", call_intr(b, "floor", half), half))
    ity = ir.IntType(32 if ty == F32 else 64)
    neg = b.icmp_signed("<", b.bitcast(x, ity), ir.Constant(ity, 0))
    r = b.select(b.and_(neg, odd), b.fneg(r), r)
    bad = b.and_(b.and_(b.fcmp_ordered("<", x, c(0.0)), b.fcmp_ordered("<", ax, c(math.inf))),
                 b.not_(y_int))
    r = b.select(bad, c(math.nan), r)
    r = b.select(b.fcmp_unordered("uno", x, y), b.fadd(x, y), r)
    # 1 for y == 0 (even NaN x), x == 1 (even NaN y), and (-1)**(+-inf).
    unit = b.or_(b.fcmp_ordered("==", y, c(0.0)), b.fcmp_ordered("==", x, c(1.0)))
    m1 = b.and_(b.fcmp_ordered("==", x, c(-1.0)), b.fcmp_ordered("==", call_intr(b, "fabs", y), c(math.inf)))
    return b.select(b.or_(unit, m1), c(1.0), r)


# -- float32 pow core: log2 and exp2 in float64, no division ---------------------------------
# musl/ARM powf's reduction: x = 2^k z, z in [OFF, 2 OFF) split in 16 intervals, each with
# c near its centre: log2 x = k + log2(1/invc)... + log2(1 + r), r = z*invc - 1, |r| < 0.032.
_POWF_OFF = 0x3F330000


@functools.cache  # on first use: ~1-15 ms each, not at every import of the backend
def _powf_tables() -> tuple[list[float], list[float]]:
    invc, logc = [], []
    for i in range(16):
        lo = np.array([_POWF_OFF + (i << 19)], np.uint32).view(np.float32)[0]
        hi = np.array([_POWF_OFF + ((i + 1) << 19)], np.uint32).view(np.float32)[0]
        c = math.sqrt(float(lo) * float(hi))
        inv = 1.0 / c
        invc.append(inv)
        logc.append(float(-np.log2(np.longdouble(inv))))
    return invc, logc


# log2(1+r) = (r - r^2/2 + ... - r^6/6)/ln2: truncation < 2^-37 for |r| < 0.032
_POWF_LOG2 = [((-1.0) ** (n + 1)) / n / math.log(2.0) for n in range(6, 0, -1)] + [0.0]
# 2^u = e^(u ln2), |u| <= 1/2: Taylor to degree 9 (relative error < 2^-36)
_POWF_EXP2 = [math.log(2.0) ** n / math.factorial(n) for n in range(9, -1, -1)]


def _table(module: ir.Module, name: str, values: list[float]) -> ir.GlobalVariable:
    g = module.globals.get(name)
    if g is None:
        aty = ir.ArrayType(F64, len(values))
        g = ir.GlobalVariable(module, aty, name=name)
        g.global_constant = True
        g.linkage = "internal"
        g.initializer = ir.Constant(aty, values)
    return g


def _powf_core(b: ir.IRBuilder, ax: ir.Value, y: ir.Value) -> ir.Value:
    """ax**y for ax >= 0 (0 and inf through log2 = -inf/inf), in float64 (<= 1 ulp)."""
    i32 = ir.IntType(32)
    k32 = lambda v: ir.Constant(i32, v & 0xFFFFFFFF)  # noqa: E731
    ix = b.bitcast(ax, i32)
    sub = b.icmp_unsigned("<", ix, k32(0x00800000))  # subnormal: normalize, exponent - 23
    ixs = b.sub(b.bitcast(b.fmul(ax, fconst(F32, 2.0 ** 23)), i32), k32(23 << 23))
    ix = b.select(sub, ixs, ix)
    tmp = b.sub(ix, k32(_POWF_OFF))
    i = b.and_(b.lshr(tmp, k32(19)), k32(15))
    top = b.and_(tmp, k32(0xFF800000))
    z = b.fpext(b.bitcast(b.sub(ix, top), F32), F64)
    k = b.sitofp(b.ashr(top, k32(23)), F64)
    idx = [ir.Constant(i32, 0), i]
    _POWF_INVC, _POWF_LOGC = _powf_tables()
    invc = b.load(b.gep(_table(b.module, "gc.powf.invc", _POWF_INVC), idx, source_etype=_table(
        b.module, "gc.powf.invc", _POWF_INVC).value_type), typ=F64)
    logc_g = _table(b.module, "gc.powf.logc", _POWF_LOGC)
    logc = b.load(b.gep(logc_g, idx, source_etype=logc_g.value_type), typ=F64)
    r = fmuladd(b, z, invc, _c(-1.0))
    l2 = b.fadd(b.fadd(k, logc), horner(b, r, _POWF_LOG2))
    l2 = b.select(b.fcmp_ordered("==", ax, fconst(F32, 0.0)), _c(-math.inf), l2)
    l2 = b.select(b.fcmp_ordered("==", ax, fconst(F32, math.inf)), _c(math.inf), l2)
    t = b.fmul(b.fpext(y, F64), l2)
    t = b.select(b.fcmp_ordered(">", t, _c(200.0)), _c(200.0), t)
    t = b.select(b.fcmp_ordered("<", t, _c(-200.0)), _c(-200.0), t)
    fmt = _Fmt(F64)
    kf, ik = _round_int(b, fmt, t)
    e = horner(b, b.fsub(t, kf), _POWF_EXP2)
    return b.fptrunc(b.fmul(e, _pow2_64(b, ik)), F32)


def _pow2_64(b: ir.IRBuilder, ik: ir.Value) -> ir.Value:
    return b.bitcast(b.shl(b.add(ik, ir.Constant(I64, 1023)), ir.Constant(I64, 52)), F64)


# -- float64 core (ARM optimized-routines' scheme) -------------------------------------------
_N = 128
_OFF = 0x3FE6955500000000
_LN2HI = float.fromhex("0x1.62e42fefa3800p-1")  # k*_LN2HI exact for |k| < 2^11
_LN2LO = float.fromhex("0x1.ef35793c76730p-45")
# log1p(r) - r + r^2/2 = r^3 * Q(r), Q(r) = 1/3 - r/4 + r^2/5 - ... (Taylor to r^11:
# truncation < 2^-80 for |r| < 2^-7)
_Q = [(-1.0) ** m / (m + 3) for m in range(8, -1, -1)]


@functools.cache  # on first use: ~1-15 ms each, not at every import of the backend
def _pow_tables() -> tuple[list[float], list[float], list[float]]:
    """Per interval of z: invc (<= 9 significant bits, so ``z*invc - 1`` is exact), and
    -log(invc) as hi (a multiple of 2^-42, like k*_LN2HI) + tail."""
    ctx = decimal.Context(prec=50)
    invc, logc, tail = [], [], []
    for i in range(_N):
        lo = float(np.array([_OFF + (i << 45)], np.uint64).view(np.float64)[0])
        hi = float(np.array([_OFF + ((i + 1) << 45)], np.uint64).view(np.float64)[0])
        c = 0.5 * (lo + hi)
        inv = round(2 * _N / c) / (2 * _N) if c >= 1.0 else round(_N / c) / _N
        d = -ctx.ln(decimal.Decimal(inv))
        h = round(float(d) * 2.0 ** 42) / 2.0 ** 42  # so that k*_LN2HI + h is exact
        invc.append(inv)
        logc.append(h)
        tail.append(float(ctx.subtract(d, decimal.Decimal(h))))
    return invc, logc, tail




def _load(b: ir.IRBuilder, name: str, values: list[float], i: ir.Value) -> ir.Value:
    g = _table(b.module, name, values)
    return b.load(b.gep(g, [ir.Constant(I64, 0), i], source_etype=g.value_type), typ=F64)


def _log_dd(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """log(x) as hi + lo (relative error ~2^-66) for positive finite float64 x."""
    k64 = lambda v: ir.Constant(I64, v & 0xFFFFFFFFFFFFFFFF)  # noqa: E731
    fma = lambda p, q, s: call_intr(b, "fma", p, q, s)  # noqa: E731 - must be fused
    ix = b.bitcast(x, I64)
    sub = b.icmp_unsigned("<", ix, k64(1 << 52))  # subnormal: normalize, exponent - 52
    ixs = b.sub(b.bitcast(b.fmul(x, _c(2.0 ** 52)), I64), k64(52 << 52))
    ix = b.select(sub, ixs, ix)
    tmp = b.sub(ix, k64(_OFF))
    i = b.and_(b.lshr(tmp, k64(52 - 7)), k64(_N - 1))
    top = b.and_(tmp, k64(0xFFF << 52))
    z = b.bitcast(b.sub(ix, top), F64)
    kd = b.sitofp(b.ashr(tmp, k64(52)), F64)
    _INVC, _LOGC, _LOGCTAIL = _pow_tables()
    invc = _load(b, "gc.pow.invc", _INVC, i)
    logc = _load(b, "gc.pow.logc", _LOGC, i)
    logctail = _load(b, "gc.pow.logctail", _LOGCTAIL, i)
    r = fma(z, invc, _c(-1.0))  # exact
    t1 = fma(kd, _c(_LN2HI), logc)  # exact: both multiples of 2^-42 below 2^10
    t2 = b.fadd(t1, r)
    lo1 = fma(kd, _c(_LN2LO), logctail)
    lo2 = b.fadd(b.fsub(t1, t2), r)
    ar = b.fmul(_c(-0.5), r)
    ar2 = b.fmul(r, ar)  # -r^2/2, its rounding error in lo3
    hi = b.fadd(t2, ar2)
    lo3 = fma(ar, r, b.fneg(ar2))
    lo4 = b.fadd(b.fsub(t2, hi), ar2)
    p = b.fmul(b.fmul(r, b.fmul(r, r)), horner(b, r, _Q))
    lo = b.fadd(b.fadd(b.fadd(b.fadd(lo1, lo2), lo3), lo4), p)
    y = b.fadd(hi, lo)
    return y, b.fadd(b.fsub(hi, y), lo)


# exp(hi + lo) = 2^(k/N) e^r, |r| <= ln2/(2N): 2^(j/N) as a double and a relative tail.
_LN2HI_N = float.fromhex("0x1.62e42fefa0000p-8")  # ln2/N, 36 bits: k*_LN2HI_N exact
_LN2LO_N = float.fromhex("0x1.cf79abc9e3b3ap-47")


@functools.cache  # on first use: ~1-15 ms each, not at every import of the backend
def _exp_tables() -> tuple[list[float], list[float]]:
    ctx = decimal.Context(prec=50)
    two, tails = [], []
    for j in range(_N):
        d = ctx.power(decimal.Decimal(2), ctx.divide(decimal.Decimal(j), decimal.Decimal(_N)))
        h = float(d)
        two.append(h)
        tails.append(float(ctx.divide(ctx.subtract(d, decimal.Decimal(h)), decimal.Decimal(h))))
    return two, tails




def _exp_dd(b: ir.IRBuilder, hi: ir.Value, lo: ir.Value) -> ir.Value:
    """exp(hi + lo) to ~0.5 ulp (|lo| small against hi's ulp); over/underflows as exp."""
    fmt = _Fmt(F64)
    inrange = b.fcmp_ordered("<", call_intr(b, "fabs", hi), _c(800.0))
    hc = b.select(inrange, hi, b.select(b.fcmp_ordered("<", hi, _c(0.0)), _c(-800.0), _c(800.0)))
    lo = b.select(inrange, lo, _c(0.0))  # past 800 the low part is meaningless (inf - inf)
    kd, ki = _round_int(b, fmt, b.fmul(hc, _c(_N / math.log(2.0))))
    r = call_intr(b, "fma", b.fneg(kd), _c(_LN2HI_N), hc)  # exact
    r = b.fadd(fmuladd(b, b.fneg(kd), _c(_LN2LO_N), r), lo)
    j = b.and_(ki, ir.Constant(I64, _N - 1))
    k = b.ashr(ki, ir.Constant(I64, 7))
    _EXP2J, _EXP2J_TAIL = _exp_tables()
    two = _load(b, "gc.pow.exp2j", _EXP2J, j)
    tail = _load(b, "gc.pow.exp2jtail", _EXP2J_TAIL, j)
    r2 = b.fmul(r, r)
    poly = fmuladd(b, r2, fmuladd(b, r, _c(1.0 / 6), _c(0.5)),
                   b.fmul(b.fmul(r2, r2), fmuladd(b, r, _c(1.0 / 120), _c(1.0 / 24))))
    tmp = b.fadd(b.fadd(tail, r), poly)
    return _scale(b, fmt, fmuladd(b, two, tmp, two), k)


def _pow_core64(b: ir.IRBuilder, ax: ir.Value, y: ir.Value) -> ir.Value:
    """ax**y for ax >= 0: exp(ehi + elo), ehi + elo = y*log(ax) (log 0 = -inf, log inf = inf)."""
    lhi, llo = _log_dd(b, ax)
    lhi = b.select(b.fcmp_ordered("==", ax, _c(0.0)), _c(-math.inf), lhi)
    lhi = b.select(b.fcmp_ordered("==", ax, _c(math.inf)), _c(math.inf), lhi)
    ehi = b.fmul(y, lhi)
    elo = fmuladd(b, y, llo, call_intr(b, "fma", y, lhi, b.fneg(ehi)))
    return _exp_dd(b, ehi, elo)


__all__ = ["call_pow", "pow_function"]
