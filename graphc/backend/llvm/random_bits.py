"""What the random kernels (graphc.backend.llvm.random_kernels) are made of: the
Philox4x64-10 block function as an LLVM function, an exact i64 -> double conversion,
and fdlibm/musl's sin and cos kernels with the same operation order as the C source
(so samples follow the reference bit for bit, or within an ulp for sin/cos)."""

from __future__ import annotations

import struct

from llvmlite import ir

from graphc.backend.llvm.irutil import F64, I64, PTR, fconst
from graphc.backend.llvm.lowering import c64, for_range

I128 = ir.IntType(128)
PHILOX_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)
PHILOX_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)


def _hex(hi: int, lo: int) -> float:
    return struct.unpack(">d", struct.pack(">II", hi, lo))[0]


# musl/fdlibm __sin/__cos kernel coefficients (exact bit patterns).
_S = [_hex(0xBFC55555, 0x55555549), _hex(0x3F811111, 0x1110F8A6), _hex(0xBF2A01A0, 0x19C161D5),
      _hex(0x3EC71DE3, 0x57B1FE7D), _hex(0xBE5AE5E6, 0x8A2B9CEB), _hex(0x3DE5D93A, 0x5ACFD57C)]
_C = [_hex(0x3FA55555, 0x5555554C), _hex(0xBF56C16C, 0x16C15177), _hex(0x3EFA01A0, 0x19CB1590),
      _hex(0xBE927E4F, 0x809C52AD), _hex(0x3E21EE9E, 0xBDB4B1C4), _hex(0xBDA8FAE9, 0xBE8838D4)]


def u64c(v: int) -> ir.Constant:
    return ir.Constant(I64, v - (1 << 64) if v >= 1 << 63 else v)


def f64c(v: float) -> ir.Constant:
    return fconst(F64, v)


# -- Philox ------------------------------------------------------------------------------
def philox_fill(module: ir.Module) -> ir.Function:
    """``void fill(u64 *buf, i64 block0, i64 nblocks, u64 k0, u64 k1, u64 trial)``: the words
    of blocks ``block0 .. block0+nblocks-1`` of trial stream ``trial`` (counter
    ``[block + 1, trial, 0, 0]``, key ``(k0, k1)``) to ``buf[0 .. 4*nblocks-1]``."""
    fname = "gc.philox4x64.fill"
    fn = module.globals.get(fname)
    if fn is not None:
        return fn
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64, I64, I64, I64]), name=fname)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    buf, block0, nblocks, k0, k1, trial = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    shift = ir.Constant(I128, 64)

    def mulhilo(x: ir.Value, m: int) -> tuple[ir.Value, ir.Value]:
        p = b.mul(b.zext(x, I128), ir.Constant(I128, m))
        return b.trunc(b.lshr(p, shift), I64), b.trunc(p, I64)

    def block(j: ir.Value) -> None:
        c = [b.add(b.add(block0, j), c64(1)), trial, c64(0), c64(0)]
        ka, kb = k0, k1
        for r in range(10):
            if r:
                ka, kb = b.add(ka, u64c(PHILOX_W[0])), b.add(kb, u64c(PHILOX_W[1]))
            hi0, lo0 = mulhilo(c[0], PHILOX_M[0])
            hi1, lo1 = mulhilo(c[2], PHILOX_M[1])
            c = [b.xor(b.xor(hi1, c[1]), ka), lo1, b.xor(b.xor(hi0, c[3]), kb), lo0]
        base = b.shl(j, c64(2))
        for w in range(4):
            b.store(c[w], b.gep(buf, [b.add(base, c64(w))], source_etype=I64))

    for_range(b, nblocks, block)
    b.ret_void()
    return fn


def u53(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """``x`` (an i64 below 2**53 + 1) as an exact double, in two 32-bit halves through the
    2**52 exponent trick (AVX2 has no vector int64 -> double conversion)."""
    magic, two52 = c64(0x4330000000000000), f64c(2.0 ** 52)
    hi = b.fsub(b.bitcast(b.or_(b.lshr(x, c64(32)), magic), F64), two52)
    lo = b.fsub(b.bitcast(b.or_(b.and_(x, c64(0xFFFFFFFF)), magic), F64), two52)
    return b.fadd(b.fmul(hi, f64c(2.0 ** 32)), lo)


def poly(b: ir.IRBuilder, z: ir.Value, coeffs: list[float]) -> ir.Value:
    """``c0 + z*(c1 + z*(c2 + ...))`` with separate multiplies and adds, as the C source."""
    acc = f64c(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = b.fadd(f64c(c), b.fmul(z, acc))
    return acc


def sin_kernel(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    z = b.fmul(x, x)
    v = b.fmul(z, x)
    r = poly(b, z, _S[1:])
    return b.fadd(x, b.fmul(v, b.fadd(f64c(_S[0]), b.fmul(z, r))))


def cos_kernel(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    z = b.fmul(x, x)
    w = b.fmul(z, z)
    r = b.fadd(b.fmul(z, poly(b, z, _C[:3])), b.fmul(b.fmul(w, w), poly(b, z, _C[3:])))
    hz = b.fmul(f64c(0.5), z)
    w = b.fsub(f64c(1.0), hz)
    return b.fadd(w, b.fadd(b.fsub(b.fsub(f64c(1.0), w), hz), b.fmul(z, r)))
