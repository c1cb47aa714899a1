"""Vectorizable sin, cos, tan and floating pow in LLVM IR (registered into vmath).

sin/cos/tan: Cody-Waite reduction ``x = n*pi/2 + y`` then fdlibm/musl kernel
polynomials on ``|y| <= pi/4``, the quadrant chosen per element with ``select``.

- float32 sin/cos compute in float32 (16 lanes) for |x| < 1e5: NumPy's three-part
  pi/2 with fused multiply-adds (the first step exact), Cephes' sinf/cosf
  polynomials (<= 2 ulp, mean 0.2). float32 tan computes in float64 (musl's tanf
  scheme): ``pi/2`` split 25 + 53 bits, so ``x - n*pio2_1`` is exact while
  ``|n| < 2^28``; sin/cos of the reduced argument round once to float32 (<= 1 ulp).
- float64 splits ``pi/2`` into three 33-bit parts plus a tail (fdlibm's
  __rem_pio2 medium case): ``n*part`` is exact while ``|n| <= 2^20``, and the
  remainder is carried as a double-double into fdlibm's __sin/__cos kernels.
  tan is sin/cos of the reduced argument (<= ~2 ulp).
- Beyond the reduction's range (|x| > 1e5 float32 sin/cos, ~4e8 float32 tan,
  ~1.6e6 float64) only those lanes call libm (full Payne-Hanek). The loop calls a
  side-effect-free helper whose VFABI vector variants test the whole vector and
  call libm per huge lane only, so the loop vectorizes and the common case costs
  one call per vector (~25% of sin; a predicated libm call stops vectorization,
  and LLVM's own llvm.sin is widened into a libm call per lane). Payne-Hanek in
  vector code needs a 2/pi bit table with per-lane gathers and, for float64,
  triple-double products, computed for every lane; huge arguments are rare and
  meaningless at these precisions, so exactness there is bought from libm.

pow (float): C99/NumPy special cases by ``select``; the core is ``2^(y*log2|x|)``.
float32 evaluates log2 and exp2 in float64 without division (musl powf's 16-entry
table reduction for log2, Taylor polynomials; <= 1 ulp). float64 ports fdlibm's
e_pow.c core: log2(x) as a double-double (t1 + t2), y split into 27 + 26 bits,
exp2 of a double-double (<= 1 ulp).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import F32, F64, I32, I64, call_intr, fconst, fmuladd, horner, intrinsic
from graphc.backend.llvm.vmath import _Fmt, _isnan, _round_int, _scale, register


def _c(v: float) -> ir.Constant:
    return fconst(F64, v)


def _hex(s: str) -> float:
    return float.fromhex(s)


# -- reduction ----------------------------------------------------------------------------
_INVPIO2 = 6.36619772367581382433e-01
_F32_P1 = 1.57079631090164184570e+00  # 25 bits of pi/2
_F32_P1T = 1.58932547735281966916e-08
_F64_P1 = 1.57079632673412561417e+00  # 33 bits each
_F64_P2 = 6.07710050630396597660e-11
_F64_P3 = 2.02226624871116645580e-21
_F64_P3T = 8.47842766036889956997e-32
LIMIT = {True: 4.2e8, False: 1.6e6}  # |x| below which the reduction is accurate
# float32 sin/cos run in float32 (twice the lanes) below this (NumPy's own SIMD range is
# 117435.992); the float32 Cody-Waite reduction is exact in its first step up to there.
F32_FAST_LIMIT = 1.0e5


def limit(which: str, ty: ir.Type) -> float:
    if ty == F32 and which in ("sin", "cos"):
        return F32_FAST_LIMIT
    return LIMIT[ty == F32]


def _two_sum(b: ir.IRBuilder, a: ir.Value, c: ir.Value) -> tuple[ir.Value, ir.Value]:
    s = b.fadd(a, c)
    bb = b.fsub(s, a)
    err = b.fadd(b.fsub(a, b.fsub(s, bb)), b.fsub(c, bb))
    return s, err


def _reduce(b: ir.IRBuilder, xd: ir.Value, f32: bool) -> tuple[ir.Value, ir.Value, ir.Value]:
    """float64 ``xd`` = n*pi/2 + (yh + yl): returns (yh, yl, n & 3 as i64)."""
    fmt = _Fmt(F64)
    fn, ik = _round_int(b, fmt, b.fmul(xd, _c(_INVPIO2)))
    nf = b.fneg(fn)
    if f32:
        y = fmuladd(b, nf, _c(_F32_P1T), b.fadd(xd, b.fmul(nf, _c(_F32_P1))))
        yl = _c(0.0)
        yh = y
    else:
        a = b.fadd(xd, b.fmul(nf, _c(_F64_P1)))  # exact
        h, l1 = _two_sum(b, a, b.fmul(nf, _c(_F64_P2)))  # fn*P2 exact
        h, l2 = _two_sum(b, h, b.fmul(nf, _c(_F64_P3)))
        lo = fmuladd(b, nf, _c(_F64_P3T), b.fadd(l1, l2))
        yh = b.fadd(h, lo)
        yl = b.fsub(lo, b.fsub(yh, h))
    return yh, yl, b.and_(ik, ir.Constant(I64, 3))


def _reduce32(b: ir.IRBuilder, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """float32 ``x`` = n*pi/2 + y in float32 (|x| < F32_FAST_LIMIT): (y, 0, n & 3 as i64).

    pi/2 in three parts (NumPy's): the first has 20 bits, so with a fused multiply-add
    ``x - n*P1`` is exact; the other two steps round once each (relative 2^-24 of y)."""
    fmt = _Fmt(F32)
    n, ik = _round_int(b, fmt, b.fmul(x, fconst(F32, _INVPIO2)))
    nn = b.fneg(n)
    y = fmuladd(b, nn, fconst(F32, _hex("0x1.921fb0p+00")), x)
    y = fmuladd(b, nn, fconst(F32, _hex("0x1.5110b4p-22")), y)
    y = fmuladd(b, nn, fconst(F32, _hex("0x1.846988p-48")), y)
    return y, fconst(F32, 0.0), b.zext(b.and_(ik, ir.Constant(ir.IntType(32), 3)), I64)


# Cephes sinf/cosf polynomials on |y| <= pi/4 (float32 coefficients).
_SIN32 = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1]
_COS32 = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2]


def _sin_k32(b: ir.IRBuilder, y: ir.Value) -> ir.Value:
    z = b.fmul(y, y)
    p = horner(b, z, _SIN32)
    return fmuladd(b, b.fmul(z, y), p, y)


def _cos_k32(b: ir.IRBuilder, y: ir.Value) -> ir.Value:
    z = b.fmul(y, y)
    p = horner(b, z, _COS32)
    return fmuladd(b, b.fmul(z, z), p, fmuladd(b, z, fconst(F32, -0.5), fconst(F32, 1.0)))


# -- kernels on |y| <= pi/4 (musl) --------------------------------------------------------
_SF = [_hex("-0x15555554cbac77.0p-55"), _hex("0x111110896efbb2.0p-59"),
       _hex("-0x1a00f9e2cae774.0p-65"), _hex("0x16cd878c3b46a7.0p-71")]
_CF = [_hex("-0x1ffffffd0c5e81.0p-54"), _hex("0x155553e1053a42.0p-57"),
       _hex("-0x16c087e80f1e27.0p-62"), _hex("0x199342e0ee5069.0p-68")]
_S = [-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10]
_C = [4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11]


def _sin_k(b: ir.IRBuilder, x: ir.Value, y: ir.Value, f32: bool) -> ir.Value:
    z = b.fmul(x, x)
    w = b.fmul(z, z)
    s = b.fmul(z, x)
    if f32:  # (x + s*(S1 + z*S2)) + s*w*(S3 + z*S4)
        r = fmuladd(b, z, _c(_SF[3]), _c(_SF[2]))
        head = fmuladd(b, s, fmuladd(b, z, _c(_SF[1]), _c(_SF[0])), x)
        return fmuladd(b, b.fmul(s, w), r, head)
    # x - ((z*(0.5*y - v*r) - y) - v*S1), r = S2 + z*(S3 + z*S4) + z*w*(S5 + z*S6)
    r = b.fadd(horner(b, z, [_S[3], _S[2], _S[1]]),
               b.fmul(b.fmul(z, w), fmuladd(b, z, _c(_S[5]), _c(_S[4]))))
    inner = b.fsub(b.fmul(z, b.fsub(b.fmul(_c(0.5), y), b.fmul(s, r))), y)
    return b.fsub(x, b.fsub(inner, b.fmul(s, _c(_S[0]))))


def _cos_k(b: ir.IRBuilder, x: ir.Value, y: ir.Value, f32: bool) -> ir.Value:
    z = b.fmul(x, x)
    w = b.fmul(z, z)
    if f32:  # ((1 + z*C0) + w*C1) + (w*z)*(C2 + z*C3)
        r = fmuladd(b, z, _c(_CF[3]), _c(_CF[2]))
        head = fmuladd(b, w, _c(_CF[1]), fmuladd(b, z, _c(_CF[0]), _c(1.0)))
        return fmuladd(b, b.fmul(w, z), r, head)
    r = b.fadd(b.fmul(z, horner(b, z, [_C[2], _C[1], _C[0]])),
               b.fmul(b.fmul(w, w), horner(b, z, [_C[5], _C[4], _C[3]])))
    hz = b.fmul(_c(0.5), z)
    ww = b.fsub(_c(1.0), hz)
    tail = b.fadd(b.fsub(b.fsub(_c(1.0), ww), hz), b.fsub(b.fmul(z, r), b.fmul(x, y)))
    return b.fadd(ww, tail)


def _neg_if(b: ir.IRBuilder, cond: ir.Value, v: ir.Value) -> ir.Value:
    return b.select(cond, b.fneg(v), v)


def _bit(b: ir.IRBuilder, q: ir.Value, m: int) -> ir.Value:
    return b.icmp_unsigned("!=", b.and_(q, ir.Constant(I64, m)), ir.Constant(I64, 0))


def _trig(which: str) -> None:
    def build(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
        f32 = x.type == F32
        if f32 and which != "tan":
            yh, yl, q = _reduce32(b, x)
            s, c = _sin_k32(b, yh), _cos_k32(b, yh)
        else:
            xd = b.fpext(x, F64) if f32 else x
            yh, yl, q = _reduce(b, xd, f32)
            s = _sin_k(b, yh, yl, f32)
            c = _cos_k(b, yh, yl, f32)
        odd = _bit(b, q, 1)
        if which == "sin":
            r = _neg_if(b, _bit(b, q, 2), b.select(odd, c, s))
        elif which == "cos":
            r = _neg_if(b, _bit(b, b.add(q, ir.Constant(I64, 1)), 2), b.select(odd, s, c))
        else:
            r = b.select(odd, b.fneg(b.fdiv(c, s)), b.fdiv(s, c))
        if r.type != x.type:
            r = b.fptrunc(r, F32)
        if which != "cos":  # +-0 keeps its sign
            r = b.select(b.fcmp_ordered("==", x, fconst(x.type, 0.0)), x, r)
        # Lanes the reduction cannot handle take libm's value (see the module doc).
        slow = b.call(_huge_scalar(b.module, which, x.type), [x])
        set.add(slow.attributes, _vfabi_attr(b.module, which, x.type))
        return b.select(_is_huge(b, x, which), slow, r)

    register(which)(build)


def _is_huge(b: ir.IRBuilder, x: ir.Value, which: str) -> ir.Value:
    ax = call_intr(b, "fabs", x)
    return b.and_(b.fcmp_ordered(">=", ax, fconst(ax.type, limit(which, ax.type))),
                  b.fcmp_ordered("<", ax, fconst(ax.type, math.inf)))


def _libm_call(b: ir.IRBuilder, name: str, x: ir.Value) -> ir.Value:
    ty = x.type
    fn = intrinsic(b.module, name + ("f" if ty == F32 else ""), ty, [ty])
    fn.attributes.add("nounwind")
    call = b.call(fn, [x])
    # Not LLVM's llvm.sin: that one it would speculate and widen to a vector intrinsic,
    # which codegen scalarizes into a libm call per lane on every element.
    set.add(call.attributes, "nobuiltin")
    return call


_WIDTHS = {True: (4, 8, 16), False: (2, 4, 8)}


def _huge_name(which: str, ty: ir.Type, n: int = 0) -> str:
    return f"gc_huge_{which}_{'f32' if ty == F32 else 'f64'}" + (f"_v{n}" if n else "")


def _huge_scalar(module: ir.Module, which: str, ty: ir.Type) -> ir.Function:
    """``libm(x)`` for a huge finite x, else 0 (no call): what the vector variants do per lane.

    Declared side-effect free, with vector variants (VFABI) that test all lanes at once and
    call libm only for huge ones, so a loop over it vectorizes and the common case costs one
    compare-and-branch per vector."""
    name = _huge_name(which, ty)
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(ty, [ty]), name=name)
    fn.linkage = "weak_odr"  # kept until the vectorizer has used it; duplicates are fine
    fn.attributes.add("nounwind")
    fn.attributes.add("readnone")
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    x = fn.args[0]
    with b.if_then(_is_huge(b, x, which), likely=False):
        b.ret(_libm_call(b, which, x))
    b.ret(fconst(ty, 0.0))
    for n in _WIDTHS[ty == F32]:
        _huge_vector(module, which, ty, n)
    return fn


def _huge_vector(module: ir.Module, which: str, ty: ir.Type, n: int) -> None:
    vty = ir.VectorType(ty, n)
    fn = ir.Function(module, ir.FunctionType(vty, [vty]), name=_huge_name(which, ty, n))
    fn.linkage = "weak_odr"
    fn.attributes.add("nounwind")
    fn.attributes.add("readnone")
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    x = fn.args[0]
    fabs = intrinsic(module, f"llvm.fabs.v{n}{'f32' if ty == F32 else 'f64'}", vty, [vty])
    ax = b.call(fabs, [x])
    lim = ir.Constant(vty, [float(limit(which, ty))] * n)
    inf = ir.Constant(vty, [math.inf] * n)
    mask = b.and_(b.fcmp_ordered(">=", ax, lim), b.fcmp_ordered("<", ax, inf))
    bits = b.bitcast(mask, ir.IntType(n))
    zero = ir.Constant(vty, [0.0] * n)
    with b.if_then(b.icmp_unsigned("==", bits, ir.Constant(ir.IntType(n), 0)), likely=True):
        b.ret(zero)
    acc = zero
    for k in range(n):  # rare: some lane is huge
        lane = b.extract_element(x, ir.Constant(I32, k))
        pre = b.block
        hit = b.append_basic_block(f"lane{k}")
        nxt = b.append_basic_block(f"next{k}")
        b.cbranch(b.extract_element(mask, ir.Constant(I32, k)), hit, nxt)
        b.position_at_end(hit)
        upd = b.insert_element(acc, _libm_call(b, which, lane), ir.Constant(I32, k))
        b.branch(nxt)
        b.position_at_end(nxt)
        phi = b.phi(vty)
        phi.add_incoming(acc, pre)
        phi.add_incoming(upd, hit)
        acc = phi
    b.ret(acc)


def _vfabi_attr(module: ir.Module, which: str, ty: ir.Type) -> str:
    scalar = _huge_name(which, ty)
    variants = ",".join(f"_ZGV_LLVM_N{n}v_{scalar}({_huge_name(which, ty, n)})" for n in _WIDTHS[ty == F32])
    return f'"vector-function-abi-variant"="{variants}"'


for _w in ("sin", "cos", "tan"):
    _trig(_w)


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
    f32 = ty == F32
    c = lambda v: fconst(ty, v)  # noqa: E731
    ax = call_intr(b, "fabs", x)
    ay = call_intr(b, "fabs", y)
    inf = c(math.inf)
    # The core on a finite positive base and finite exponent (other lanes get 1, 1: safe bits).
    ok = b.and_(b.and_(b.fcmp_ordered(">", ax, c(0.0)), b.fcmp_ordered("<", ax, inf)),
                b.fcmp_ordered("<", ay, inf))
    axs = b.select(ok, ax, c(1.0))
    ys = b.select(ok, y, c(1.0))
    if f32:
        r = _powf_core(b, axs, ys)
    else:
        r = _pow_core64(b, axs, ys)
    # Non-finite operands (C99 Annex F, as NumPy).
    y_neg = b.fcmp_ordered("<", y, c(0.0))
    r = b.select(b.fcmp_ordered("==", ax, c(0.0)), b.select(y_neg, inf, c(0.0)), r)
    r = b.select(b.fcmp_ordered("==", ax, inf), b.select(y_neg, c(0.0), inf), r)
    above = b.fcmp_ordered(">", ax, c(1.0))
    y_inf = b.select(b.xor(above, y_neg), inf, c(0.0))
    y_inf = b.select(b.fcmp_ordered("==", ax, c(1.0)), c(1.0), y_inf)
    r = b.select(b.fcmp_ordered("==", ay, inf), y_inf, r)
    # Negative base: an odd integer exponent flips the sign, a non-integer one is NaN.
    y_int = _is_int(b, y)
    odd = b.and_(b.and_(y_int, b.not_(_is_int(b, b.fmul(y, c(0.5))))), b.fcmp_ordered("<", ay, inf))
    sign = b.icmp_signed("<", b.bitcast(x, ir.IntType(32 if f32 else 64)),
                         ir.Constant(ir.IntType(32 if f32 else 64), 0))
    r = b.select(b.and_(sign, odd), b.fneg(r), r)
    bad = b.and_(b.and_(b.fcmp_ordered("<", x, c(0.0)), b.fcmp_ordered("<", ax, inf)),
                 b.and_(b.not_(y_int), b.fcmp_ordered("<", ay, inf)))
    r = b.select(bad, c(math.nan), r)
    r = b.select(b.or_(_isnan(b, x), _isnan(b, y)), b.fadd(x, y), r)
    one = b.or_(b.fcmp_ordered("==", y, c(0.0)), b.fcmp_ordered("==", x, c(1.0)))
    return b.select(one, c(1.0), r)


# -- float32 pow core: log2 and exp2 in float64, no division ---------------------------------
# musl/ARM powf's reduction: x = 2^k z, z in [OFF, 2 OFF) split in 16 intervals, each with
# c near its centre: log2 x = k + log2(1/invc)... + log2(1 + r), r = z*invc - 1, |r| < 0.032.
_POWF_OFF = 0x3F330000


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


_POWF_INVC, _POWF_LOGC = _powf_tables()
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
    """ax**y for positive finite float32 ax and finite y, evaluated in float64 (<= 1 ulp)."""
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
    invc = b.load(b.gep(_table(b.module, "gc.powf.invc", _POWF_INVC), idx, source_etype=_table(
        b.module, "gc.powf.invc", _POWF_INVC).value_type), typ=F64)
    logc_g = _table(b.module, "gc.powf.logc", _POWF_LOGC)
    logc = b.load(b.gep(logc_g, idx, source_etype=logc_g.value_type), typ=F64)
    r = fmuladd(b, z, invc, _c(-1.0))
    l2 = b.fadd(b.fadd(k, logc), horner(b, r, _POWF_LOG2))
    t = b.fmul(b.fpext(y, F64), l2)
    t = b.select(b.fcmp_ordered(">", t, _c(200.0)), _c(200.0), t)
    t = b.select(b.fcmp_ordered("<", t, _c(-200.0)), _c(-200.0), t)
    fmt = _Fmt(F64)
    kf, ik = _round_int(b, fmt, t)
    e = horner(b, b.fsub(t, kf), _POWF_EXP2)
    return b.fptrunc(b.fmul(e, _pow2_64(b, ik)), F32)


def _pow2_64(b: ir.IRBuilder, ik: ir.Value) -> ir.Value:
    return b.bitcast(b.shl(b.add(ik, ir.Constant(I64, 1023)), ir.Constant(I64, 52)), F64)


# fdlibm e_pow.c constants.
_L = [5.99999999999994648725e-01, 4.28571428578550184252e-01, 3.33333329818377432918e-01,
      2.72728123808534006489e-01, 2.30660745775561754067e-01, 2.06975017800338417784e-01]
_P = [1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
      -1.65339022054652515390e-06, 4.13813679705723846039e-08]
_DP_H = 5.84962487220764160156e-01
_DP_L = 1.35003920212974897128e-08
_LG2 = 6.93147180559945286227e-01
_LG2_H = 6.93147182464599609375e-01
_LG2_L = -1.90465429995776804525e-09
_CP = 9.61796693925975554329e-01
_CP_H = 9.61796700954437255859e-01
_CP_L = -7.02846165095275826516e-09
_IVLN2 = 1.44269504088896338700e+00
_IVLN2_H = 1.44269502162933349609e+00
_IVLN2_L = 1.92596299112661746887e-08


def _low0(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """``v`` with the low 32 bits of its representation cleared (fdlibm's SET_LOW_WORD(v, 0))."""
    return b.bitcast(b.and_(b.bitcast(v, I64), ir.Constant(I64, 0xFFFFFFFF00000000)), F64)


def _hi_word(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    return b.lshr(b.bitcast(v, I64), ir.Constant(I64, 32))


def _from_hi(b: ir.IRBuilder, hi: ir.Value) -> ir.Value:
    return b.bitcast(b.shl(hi, ir.Constant(I64, 32)), F64)


def _log2_dd(b: ir.IRBuilder, ax: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value, ir.Value]:
    """log2(ax) as t1 + t2 (t1 with 32 zero low bits), ax positive finite; and q1 + q2, the
    same by the series of log(1+t), accurate when |1-x| <= 2^-20."""
    k64 = lambda v: ir.Constant(I64, v)  # noqa: E731
    sub = b.fcmp_ordered("<", ax, _c(2.0 ** -1022))
    axn = b.select(sub, b.fmul(ax, _c(2.0 ** 53)), ax)
    ix = _hi_word(b, axn)
    n = b.sub(b.sub(b.lshr(ix, k64(20)), k64(0x3FF)), b.select(sub, k64(53), k64(0)))
    j = b.and_(ix, k64(0x000FFFFF))
    ix = b.or_(j, k64(0x3FF00000))
    k1 = b.and_(b.icmp_signed(">", j, k64(0x3988E)), b.icmp_signed("<", j, k64(0xBB67A)))
    wrap = b.icmp_signed(">=", j, k64(0xBB67A))
    n = b.add(n, b.zext(wrap, I64))
    ix = b.select(wrap, b.sub(ix, k64(0x00100000)), ix)
    low = b.and_(b.bitcast(axn, I64), k64(0xFFFFFFFF))
    a = b.bitcast(b.or_(b.shl(ix, k64(32)), low), F64)
    bp = b.select(k1, _c(1.5), _c(1.0))
    u = b.fsub(a, bp)
    v = b.fdiv(_c(1.0), b.fadd(a, bp))
    ss = b.fmul(u, v)
    s_h = _low0(b, ss)
    t_h = _from_hi(b, b.add(b.add(b.or_(b.lshr(ix, k64(1)), k64(0x20000000)), k64(0x00080000)),
                            b.select(k1, k64(1 << 18), k64(0))))
    t_l = b.fsub(a, b.fsub(t_h, bp))
    s_l = b.fmul(v, b.fsub(b.fsub(u, b.fmul(s_h, t_h)), b.fmul(s_h, t_l)))
    s2 = b.fmul(ss, ss)
    r = b.fmul(b.fmul(s2, s2), horner(b, s2, list(reversed(_L))))
    r = b.fadd(r, b.fmul(s_l, b.fadd(s_h, ss)))
    s2 = b.fmul(s_h, s_h)
    t_h = _low0(b, b.fadd(b.fadd(_c(3.0), s2), r))
    t_l = b.fsub(r, b.fsub(b.fsub(t_h, _c(3.0)), s2))
    u = b.fmul(s_h, t_h)
    v = b.fadd(b.fmul(s_l, t_h), b.fmul(t_l, ss))
    p_h = _low0(b, b.fadd(u, v))
    p_l = b.fsub(v, b.fsub(p_h, u))
    z_h = b.fmul(_c(_CP_H), p_h)
    z_l = b.fadd(b.fadd(b.fmul(_c(_CP_L), p_h), b.fmul(p_l, _c(_CP))), b.select(k1, _c(_DP_L), _c(0.0)))
    dp_h = b.select(k1, _c(_DP_H), _c(0.0))
    t = b.sitofp(n, F64)
    t1 = _low0(b, b.fadd(b.fadd(b.fadd(z_h, z_l), dp_h), t))
    t2 = b.fsub(z_l, b.fsub(b.fsub(b.fsub(t1, t), dp_h), z_h))
    # |1-x| <= 2^-20 with a huge exponent: the series of log(x) (fdlibm's |y| > 2^31 case).
    tt = b.fsub(ax, _c(1.0))
    w = b.fmul(b.fmul(tt, tt), b.fsub(_c(0.5), b.fmul(tt, b.fsub(_c(0.3333333333333333333333),
                                                                 b.fmul(tt, _c(0.25))))))
    uu = b.fmul(_c(_IVLN2_H), tt)
    vv = b.fsub(b.fmul(tt, _c(_IVLN2_L)), b.fmul(w, _c(_IVLN2)))
    q1 = _low0(b, b.fadd(uu, vv))
    q2 = b.fsub(vv, b.fsub(q1, uu))
    return t1, t2, q1, q2


def _pow_core64(b: ir.IRBuilder, ax: ir.Value, y: ir.Value) -> ir.Value:
    t1, t2, q1, q2 = _log2_dd(b, ax)
    near1 = b.and_(b.fcmp_ordered(">", call_intr(b, "fabs", y), _c(2.0 ** 31)),
                   b.fcmp_ordered("<=", call_intr(b, "fabs", b.fsub(ax, _c(1.0))), _c(2.0 ** -20)))
    t1 = b.select(near1, q1, t1)
    t2 = b.select(near1, q2, t2)
    y1 = _low0(b, y)
    p_l = b.fadd(b.fmul(b.fsub(y, y1), t1), b.fmul(y, t2))
    p_h = b.fmul(y1, t1)
    z = b.fadd(p_l, p_h)
    over = b.or_(b.fcmp_ordered(">", z, _c(1024.0)),
                 b.and_(b.fcmp_ordered("==", z, _c(1024.0)),
                        b.fcmp_ordered(">", b.fadd(p_l, _c(8.0085662595372944372e-17)), b.fsub(z, p_h))))
    under = b.or_(b.fcmp_ordered("<", z, _c(-1075.0)),
                  b.and_(b.fcmp_ordered("==", z, _c(-1075.0)),
                         b.fcmp_ordered("<=", p_l, b.fsub(z, p_h))))
    # 2^(p_h + p_l) = 2^n * 2^(p_h - n + p_l); clamped so the integer tricks stay in range
    # (the clamped lanes are the over/underflowing ones, replaced below).
    p_h = b.select(b.fcmp_ordered(">", p_h, _c(1100.0)), _c(1100.0), p_h)
    p_h = b.select(b.fcmp_ordered("<", p_h, _c(-1100.0)), _c(-1100.0), p_h)
    fmt = _Fmt(F64)
    nf, ik = _round_int(b, fmt, p_h)
    p_h = b.fsub(p_h, nf)
    t = _low0(b, b.fadd(p_l, p_h))
    u = b.fmul(t, _c(_LG2_H))
    v = b.fadd(b.fmul(b.fsub(p_l, b.fsub(t, p_h)), _c(_LG2)), b.fmul(t, _c(_LG2_L)))
    z = b.fadd(u, v)
    w = b.fsub(v, b.fsub(z, u))
    t = b.fmul(z, z)
    t1 = b.fsub(z, b.fmul(t, horner(b, t, list(reversed(_P)))))
    r = b.fsub(b.fdiv(b.fmul(z, t1), b.fsub(t1, _c(2.0))), b.fadd(w, b.fmul(z, w)))
    z = b.fsub(_c(1.0), b.fsub(r, z))
    res = _scale(b, fmt, z, ik)
    res = b.select(over, _c(math.inf), res)
    return b.select(under, _c(0.0), res)


__all__ = ["call_pow", "pow_function", "LIMIT"]
