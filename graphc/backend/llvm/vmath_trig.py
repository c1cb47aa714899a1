"""Vectorizable sin, cos, tan in LLVM IR (registered into vmath; pow is in vmath_pow).

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
"""

from __future__ import annotations

import math

from llvmlite import ir

from graphc.backend.llvm.irutil import F32, F64, I32, I64, call_intr, fconst, fmuladd, horner, intrinsic
from graphc.backend.llvm.vmath import _Fmt, _round_int, register


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


__all__ = ["LIMIT", "F32_FAST_LIMIT", "limit"]
