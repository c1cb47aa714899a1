"""IR helpers shared by the kernels and the vector math: types, constants, casts.

Values in registers: bool is ``i1``, every integer dtype ``iN`` (signedness is
carried by the dtype, not the IR type), float32 ``float``, float64 ``double``.
In memory bool is one byte (``i8``), as in NumPy.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()

#: dtypes the native kernels handle; others (float16) run on the reference evaluator.
NATIVE_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float32", "float64"]
)


def is_float(dtype: str) -> bool:
    return dtype in ("float32", "float64")


def is_signed(dtype: str) -> bool:
    return dtype.startswith("int")


def is_unsigned(dtype: str) -> bool:
    return dtype.startswith("uint")


def bits(dtype: str) -> int:
    return 1 if dtype == "bool" else np.dtype(dtype).itemsize * 8


def reg_type(dtype: str) -> ir.Type:
    if dtype == "float32":
        return F32
    if dtype == "float64":
        return F64
    return ir.IntType(bits(dtype))


def mem_type(dtype: str) -> ir.Type:
    return I8 if dtype == "bool" else reg_type(dtype)


def float_dtype_of(ty: ir.Type) -> str:
    return "float32" if ty == F32 else "float64"


def const(dtype: str, value: object) -> ir.Constant:
    """An IR constant of ``dtype`` holding ``value`` (NumPy's conversion of it)."""
    v = np.asarray(value).astype(dtype)[()]
    if is_float(dtype):
        return ir.Constant(reg_type(dtype), float(v))
    if dtype == "bool":
        return ir.Constant(I1, int(bool(v)))
    n = bits(dtype)
    return ir.Constant(ir.IntType(n), int(v) & ((1 << n) - 1))


def fconst(ty: ir.Type, value: float) -> ir.Constant:
    return ir.Constant(ty, float(value))


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args: list[ir.Type]) -> ir.Function:
    """Declare (once) and return an intrinsic or external function."""
    fn = module.globals.get(name)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, args), name=name)
    return fn


def suffix(ty: ir.Type) -> str:
    if isinstance(ty, ir.VectorType):  # llvm.<name>.v16f32 for vector operands
        return f"v{ty.count}{suffix(ty.element)}"
    if ty == F32:
        return "f32"
    if ty == F64:
        return "f64"
    return f"i{ty.width}"


def call_intr(b: ir.IRBuilder, base: str, *args: ir.Value, ret: ir.Type | None = None) -> ir.Value:
    """``llvm.<base>.<type>(args)`` for a type-overloaded intrinsic of the first argument."""
    ty = args[0].type
    fn = intrinsic(b.module, f"llvm.{base}.{suffix(ty)}", ret or ty, [a.type for a in args])
    return b.call(fn, list(args))


def fmuladd(b: ir.IRBuilder, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    return call_intr(b, "fmuladd", x, y, z)


def horner(b: ir.IRBuilder, x: ir.Value, coeffs: list[float]) -> ir.Value:
    """``c0*x^(n-1) + ... + c_{n-1}`` (highest degree first) with fused multiply-adds."""
    ty = x.type
    acc = fconst(ty, coeffs[0])
    for c in coeffs[1:]:
        acc = fmuladd(b, acc, x, fconst(ty, c))
    return acc


def select_horner(
    b: ir.IRBuilder, cond: ir.Value, x: ir.Value, when_true: list[float], when_false: list[float]
) -> ir.Value:
    """Horner with the coefficients chosen per element by ``cond`` (equal lengths)."""
    ty = x.type
    acc = b.select(cond, fconst(ty, when_true[0]), fconst(ty, when_false[0]))
    for ct, cf in zip(when_true[1:], when_false[1:]):
        acc = fmuladd(b, acc, x, b.select(cond, fconst(ty, ct), fconst(ty, cf)))
    return acc


def libm(b: ir.IRBuilder, name: str, *args: ir.Value) -> ir.Value:
    """Call the C library's ``name`` (``namef`` for float32 arguments)."""
    ty = args[0].type
    full = name + "f" if ty == F32 else name
    fn = intrinsic(b.module, full, ty, [a.type for a in args])
    return b.call(fn, list(args))


# -- casts with NumPy's semantics -----------------------------------------------------
def to_bool(b: ir.IRBuilder, v: ir.Value, dtype: str) -> ir.Value:
    if dtype == "bool":
        return v
    if is_float(dtype):
        return b.fcmp_unordered("!=", v, ir.Constant(v.type, 0.0))  # NaN is true
    return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))


def _float_to_int(b: ir.IRBuilder, v: ir.Value, to: str) -> ir.Value:
    """C's cast as x86 compilers emit it: out of range (and NaN) gives INT_MIN bits.

    NumPy's result there is formally undefined; matching the common hardware
    answer keeps the kernels free of LLVM poison (fptosi out of range is poison).
    """
    ty = v.type
    n = bits(to)

    def checked(x: ir.Value, width: int) -> ir.Value:
        it = ir.IntType(width)
        lo = fconst(ty, -(2.0 ** (width - 1)))
        hi = fconst(ty, 2.0 ** (width - 1))
        ok = b.and_(b.fcmp_ordered(">=", x, lo), b.fcmp_ordered("<", x, hi))
        return b.select(ok, b.fptosi(x, it), ir.Constant(it, 1 << (width - 1)))

    if to == "uint64":
        big = fconst(ty, 2.0 ** 63)
        small = b.fcmp_ordered("<", v, big)
        low = checked(v, 64)
        high = b.xor(checked(b.fsub(v, big), 64), ir.Constant(I64, 1 << 63))
        return b.select(small, low, high)
    if to == "int64" or to == "uint32":
        r = checked(v, 64)
    else:
        r = checked(v, 32)
    return r if n == r.type.width else b.trunc(r, ir.IntType(n))


def cast(b: ir.IRBuilder, v: ir.Value, frm: str, to: str) -> ir.Value:
    """Convert a register value of dtype ``frm`` to dtype ``to`` as ``ndarray.astype``."""
    if frm == to:
        return v
    if to == "bool":
        return to_bool(b, v, frm)
    dst = reg_type(to)
    if frm == "bool":
        return b.uitofp(v, dst) if is_float(to) else b.zext(v, dst)
    if is_float(frm):
        if is_float(to):
            return b.fpext(v, dst) if bits(to) > bits(frm) else b.fptrunc(v, dst)
        return _float_to_int(b, v, to)
    if is_float(to):
        return b.uitofp(v, dst) if is_unsigned(frm) else b.sitofp(v, dst)
    if bits(to) == bits(frm):
        return v
    if bits(to) < bits(frm):
        return b.trunc(v, dst)
    return b.zext(v, dst) if is_unsigned(frm) else b.sext(v, dst)


_callee_classes: dict[type, type] = {}


def as_callee(value: ir.Value, fnty: ir.FunctionType) -> ir.Value:
    """``value`` (a pointer) made callable by ``IRBuilder.call`` as a function of type
    ``fnty``: llvmlite calls any value that has a ``function_type`` (an indirect call)."""
    cls = type(value)
    if cls not in _callee_classes:
        _callee_classes[cls] = type("Callee", (cls,), {"function_type": property(lambda self: self.fnty)})
    value.__class__ = _callee_classes[cls]
    value.fnty = fnty  # type: ignore[attr-defined]
    return value
