"""Lowering of scalar ops (by ScalarOp name) to LLVM IR with NumPy's semantics.

Each op computes in the dtype NumPy's own loop would use (``ufunc.resolve_dtypes``,
or a probe of the reference implementation for non-ufuncs), then the result is
cast to the node's dtype, as ``Elemwise.perform`` does with ``np.asarray(r,
dtype)``. So ``exp(int8)`` (a float16 loop in NumPy) is *not* lowered and falls
back to the reference, while ``exp(int32)`` computes in float64 like NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import vmath, vmath_pow
from graphc.backend.llvm.irutil import (
    NATIVE_DTYPES,
    call_intr,
    cast,
    const,
    fconst,
    is_float,
    is_signed,
    is_unsigned,
    libm,
    reg_type,
    to_bool,
)


class Unsupported(Exception):
    """This op/dtype combination has no native lowering: use the reference ``perform``."""


_UFUNCS: dict[str, np.ufunc] = {
    "add": np.add, "mul": np.multiply, "sub": np.subtract, "true_div": np.true_divide,
    "int_div": np.floor_divide, "mod": np.remainder, "pow": np.power, "neg": np.negative,
    "sgn": np.sign, "abs": np.absolute, "exp": np.exp, "exp2": np.exp2, "expm1": np.expm1,
    "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "sqrt": np.sqrt,
    "sqr": np.square, "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin,
    "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "tanh": np.tanh, "arctanh": np.arctanh, "floor": np.floor, "ceil": np.ceil,
    "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal, "neq": np.not_equal,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "isnan": np.isnan, "isinf": np.isinf, "and_": np.bitwise_and, "or_": np.bitwise_or,
    "xor": np.bitwise_xor, "invert": np.invert,
}
# Ops whose reference is not a ufunc: the loop dtype is what the reference returns.
_PROBED = {"round", "clip", "erf", "sigmoid", "softplus", "hard_sigmoid", "softsign", "relu", "elu"}


def _check(dtypes: Sequence[str]) -> None:
    for d in dtypes:
        if d not in NATIVE_DTYPES:
            raise Unsupported(f"dtype {d} has no native kernels")


def _probe(impl: Callable, in_dtypes: Sequence[str]) -> str:
    try:
        with np.errstate(all="ignore"):
            r = np.asarray(impl(*[np.ones(2, d) for d in in_dtypes]))
    except Exception as exc:  # the reference itself rejects these dtypes
        raise Unsupported(str(exc)) from exc
    return r.dtype.name


def loop_dtypes(name: str, params: tuple, in_dtypes: Sequence[str],
                impl: Callable | None) -> tuple[list[str], str]:
    """(dtypes the op's inputs are converted to, dtype it computes) as NumPy would."""
    _check(in_dtypes)
    if name in _UFUNCS and not (name in ("add", "mul") and len(in_dtypes) != 2):
        uf = _UFUNCS[name]
        if uf.nin != len(in_dtypes):
            raise Unsupported(f"{name} with {len(in_dtypes)} inputs")
        try:
            res = uf.resolve_dtypes(tuple(np.dtype(d) for d in in_dtypes) + (None,))
        except Exception as exc:
            raise Unsupported(str(exc)) from exc
        ins, out = [d.name for d in res[:-1]], res[-1].name
        if len(set(ins)) > 1:  # mixed loops (int64 vs uint64 comparisons)
            raise Unsupported(f"{name}: mixed loop {ins}")
        _check(ins + [out])
        return ins, out
    if name in _PROBED:
        if impl is None:
            raise Unsupported(name)
        out = _probe(impl, in_dtypes)
        _check([out])
        return [out] * len(in_dtypes), out
    if name == "cast":
        return list(in_dtypes), params[0]
    if name == "second":
        return list(in_dtypes), in_dtypes[1]
    if name == "switch":
        out = np.result_type(in_dtypes[1], in_dtypes[2]).name
        _check([out])
        return [in_dtypes[0], out, out], out
    raise Unsupported(f"no lowering for scalar op {name!r}")


class Ctx:
    """What a lowering may need besides its operands: the builder and an error flag."""

    def __init__(self, b: ir.IRBuilder, status: ir.Value | None) -> None:
        self.b = b
        self.status = status
        self.params: tuple = ()  # the scalar op's parameters, during its lowering

    def fail_if(self, cond: ir.Value, code: int = 1) -> None:
        """Make the kernel return ``code`` (the executor then re-runs the reference)."""
        if self.status is None:
            raise Unsupported("this lowering needs an error status")
        b = self.b
        old = b.load(self.status, typ=ir.IntType(32))
        b.store(b.select(cond, ir.Constant(ir.IntType(32), code), old), self.status)


Lowering = Callable[[Ctx, list[ir.Value], str], ir.Value]
_LOWER: dict[str, Lowering] = {}


def lowering(*names: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        for n in names:
            _LOWER[n] = fn
        return fn

    return deco


def lower_apply(ctx: Ctx, name: str, params: tuple, args: list[tuple[ir.Value, str]],
                out_dtype: str, impl: Callable | None) -> ir.Value:
    """Lower one scalar op on (value, dtype) operands; the result has ``out_dtype``."""
    b = ctx.b
    if name in ("add", "mul") and len(args) != 2:
        if len(args) == 1:
            v, d = args[0]
            return cast(b, v, d, out_dtype)
        acc = args[0]
        for nxt in args[1:]:  # NumPy's reduce: pairwise, each step with its own dtype
            ins, loop = loop_dtypes(name, params, [acc[1], nxt[1]], impl)
            acc = (lower_apply(ctx, name, params, [acc, nxt], loop, impl), loop)
        return cast(b, acc[0], acc[1], out_dtype)
    ins, loop = loop_dtypes(name, params, [d for _, d in args], impl)
    if name == "cast":
        return cast(b, args[0][0], args[0][1], out_dtype)
    if name == "switch":
        cond = to_bool(b, args[0][0], args[0][1])
        a = cast(b, args[1][0], args[1][1], loop)
        c = cast(b, args[2][0], args[2][1], loop)
        return cast(b, b.select(cond, a, c), loop, out_dtype)
    if name == "second":
        return cast(b, args[1][0], args[1][1], out_dtype)
    fn = _LOWER.get(name)
    if fn is None:
        raise Unsupported(f"no lowering for scalar op {name!r}")
    vals = [cast(b, v, d, t) for (v, d), t in zip(args, ins)]
    ctx.params = params
    return cast(b, fn(ctx, vals, ins[0]), loop, out_dtype)


# -- arithmetic ----------------------------------------------------------------------------
@lowering("add")
def _add(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b = ctx.b
    if t == "bool":
        return b.or_(v[0], v[1])
    return b.fadd(v[0], v[1]) if is_float(t) else b.add(v[0], v[1])


@lowering("sub")
def _sub(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.fsub(v[0], v[1]) if is_float(t) else ctx.b.sub(v[0], v[1])


@lowering("mul")
def _mul(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b = ctx.b
    if t == "bool":
        return b.and_(v[0], v[1])
    return b.fmul(v[0], v[1]) if is_float(t) else b.mul(v[0], v[1])


@lowering("true_div")
def _true_div(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.fdiv(v[0], v[1])


@lowering("neg")
def _neg(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.fneg(v[0]) if is_float(t) else ctx.b.neg(v[0])


@lowering("sqr")
def _sqr(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return _mul(ctx, [v[0], v[0]], t)


@lowering("abs")
def _abs(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b, x = ctx.b, v[0]
    if is_float(t):
        return call_intr(b, "fabs", x)
    if not is_signed(t):
        return x
    return b.select(b.icmp_signed("<", x, ir.Constant(x.type, 0)), b.neg(x), x)


@lowering("sgn")
def _sgn(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b, x = ctx.b, v[0]
    ty = x.type
    if is_float(t):
        one, zero = fconst(ty, 1.0), fconst(ty, 0.0)
        r = b.select(b.fcmp_ordered("<", x, zero), fconst(ty, -1.0), fconst(ty, 0.0))
        r = b.select(b.fcmp_ordered(">", x, zero), one, r)
        return b.select(b.fcmp_unordered("uno", x, x), x, r)
    zero = ir.Constant(ty, 0)
    if is_unsigned(t):
        return b.zext(b.icmp_unsigned("!=", x, zero), ty)
    pos = b.zext(b.icmp_signed(">", x, zero), ty)
    return b.sub(pos, b.zext(b.icmp_signed("<", x, zero), ty))


def _py_floor_divmod(ctx: Ctx, a: ir.Value, c: ir.Value, t: str) -> tuple[ir.Value, ir.Value]:
    """Integer floor division and modulo as Python/NumPy: x//0 == x%0 == 0, no traps."""
    b = ctx.b
    ty = a.type
    zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
    is_zero = b.icmp_unsigned("==", c, zero)
    if not is_signed(t):
        safe = b.select(is_zero, one, c)
        return (b.select(is_zero, zero, b.udiv(a, safe)),
                b.select(is_zero, zero, b.urem(a, safe)))
    minus_one = b.icmp_signed("==", c, ir.Constant(ty, -1))
    # MIN // -1 traps in hardware; NumPy wraps it to MIN (and x % -1 is 0).
    safe = b.select(b.or_(is_zero, minus_one), one, c)
    q = b.sdiv(a, safe)
    r = b.srem(a, safe)
    adjust = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, c), zero))
    q = b.select(adjust, b.sub(q, one), q)
    r = b.select(adjust, b.add(r, c), r)
    q = b.select(minus_one, b.neg(a), q)
    return b.select(is_zero, zero, q), b.select(is_zero, zero, r)


def _float_divmod(ctx: Ctx, a: ir.Value, c: ir.Value) -> tuple[ir.Value, ir.Value]:
    """NumPy's npy_divmod: floor quotient and modulo with the sign of the divisor."""
    b = ctx.b
    ty = a.type
    zero = fconst(ty, 0.0)
    mod = b.frem(a, c)
    div = b.fdiv(b.fsub(a, mod), c)
    mod_nz = b.fcmp_unordered("!=", mod, zero)
    wrong_sign = b.xor(b.fcmp_ordered("<", c, zero), b.fcmp_ordered("<", mod, zero))
    fix = b.and_(mod_nz, wrong_sign)
    mod2 = b.select(fix, b.fadd(mod, c), mod)
    div = b.select(fix, b.fsub(div, fconst(ty, 1.0)), div)
    mod2 = b.select(mod_nz, mod2, call_intr(b, "copysign", zero, c))
    fl = call_intr(b, "floor", div)
    fl = b.select(b.fcmp_ordered(">", b.fsub(div, fl), fconst(ty, 0.5)), b.fadd(fl, fconst(ty, 1.0)), fl)
    q = b.select(b.fcmp_unordered("!=", div, zero), fl, call_intr(b, "copysign", zero, b.fdiv(a, c)))
    c_zero = b.fcmp_ordered("==", c, zero)
    return b.select(c_zero, b.fdiv(a, c), q), b.select(c_zero, mod, mod2)


@lowering("int_div")
def _int_div(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    if is_float(t):
        return _float_divmod(ctx, v[0], v[1])[0]
    return _py_floor_divmod(ctx, v[0], v[1], t)[0]


@lowering("mod")
def _mod(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    if is_float(t):
        return _float_divmod(ctx, v[0], v[1])[1]
    return _py_floor_divmod(ctx, v[0], v[1], t)[1]


@lowering("pow")
def _pow(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b = ctx.b
    base, e = v
    if is_float(t):
        return vmath_pow.call_pow(b, base, e)
    ty = base.type
    if is_signed(t):  # NumPy raises for negative integer exponents
        ctx.fail_if(b.icmp_signed("<", e, ir.Constant(ty, 0)))
    # Square-and-multiply while exponent bits remain (a loop: unrolling all 64 steps made
    # int64 kernels slow to compile, and integer powers are rare in hot code).
    one, zero = ir.Constant(ty, 1), ir.Constant(ty, 0)
    pre = b.block
    head = b.append_basic_block("ipow")
    step = b.append_basic_block("ipow.step")
    done = b.append_basic_block("ipow.done")
    b.branch(head)
    b.position_at_end(head)
    r = b.phi(ty)
    bb = b.phi(ty)
    ee = b.phi(ty)
    b.cbranch(b.icmp_unsigned("!=", ee, zero), step, done)
    b.position_at_end(step)
    odd = b.icmp_unsigned("!=", b.and_(ee, one), zero)
    r2 = b.select(odd, b.mul(r, bb), r)
    bb2 = b.mul(bb, bb)
    ee2 = b.lshr(ee, one)
    b.branch(head)
    r.add_incoming(one, pre)
    r.add_incoming(r2, step)
    bb.add_incoming(base, pre)
    bb.add_incoming(bb2, step)
    ee.add_incoming(e, pre)
    ee.add_incoming(ee2, step)
    b.position_at_end(done)
    return r


# -- comparisons, min/max, clip ------------------------------------------------------------
_CMP = {"eq": "==", "neq": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _compare(b: ir.IRBuilder, op: str, x: ir.Value, y: ir.Value, t: str) -> ir.Value:
    if is_float(t):
        return b.fcmp_unordered(op, x, y) if op == "!=" else b.fcmp_ordered(op, x, y)
    return b.icmp_signed(op, x, y) if is_signed(t) else b.icmp_unsigned(op, x, y)


def _make_cmp(name: str) -> None:
    @lowering(name)
    def _lower(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
        return _compare(ctx.b, _CMP[name], v[0], v[1], t)


for _n in _CMP:
    _make_cmp(_n)


def _max(b: ir.IRBuilder, x: ir.Value, y: ir.Value, t: str, op: str) -> ir.Value:
    """NumPy's maximum/minimum: a NaN in either operand wins."""
    if is_float(t):
        keep_x = b.or_(b.fcmp_ordered(op, x, y), b.fcmp_unordered("uno", x, x))
        return b.select(keep_x, x, y)
    return b.select(_compare(b, op, x, y, t), x, y)


@lowering("maximum")
def _maximum(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return _max(ctx.b, v[0], v[1], t, ">=")


@lowering("minimum")
def _minimum(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return _max(ctx.b, v[0], v[1], t, "<=")


@lowering("clip")
def _clip(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return _max(ctx.b, _max(ctx.b, v[0], v[1], t, ">="), v[2], t, "<=")


@lowering("isnan")
def _isnan(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    if not is_float(t):
        return ir.Constant(ir.IntType(1), 0)
    return ctx.b.fcmp_unordered("uno", v[0], v[0])


@lowering("isinf")
def _isinf(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    if not is_float(t):
        return ir.Constant(ir.IntType(1), 0)
    return ctx.b.fcmp_ordered("==", call_intr(ctx.b, "fabs", v[0]), fconst(v[0].type, np.inf))


# -- bitwise -------------------------------------------------------------------------------
@lowering("and_")
def _and(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.and_(v[0], v[1])


@lowering("or_")
def _or(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.or_(v[0], v[1])


@lowering("xor")
def _xor(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.xor(v[0], v[1])


@lowering("invert")
def _invert(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return ctx.b.xor(v[0], ir.Constant(v[0].type, -1 if t != "bool" else 1))


# -- rounding ------------------------------------------------------------------------------
def _make_round(name: str, intr: str) -> None:
    @lowering(name)
    def _lower(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
        return call_intr(ctx.b, intr, v[0]) if is_float(t) else v[0]


_make_round("floor", "floor")
_make_round("ceil", "ceil")
_make_round("round", "roundeven")


# -- transcendental ------------------------------------------------------------------------
def _make_vmath(name: str) -> None:
    @lowering(name)
    def _lower(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
        if not is_float(t):
            raise Unsupported(f"{name} on {t}")
        return vmath.call_math(ctx.b, name, v[0])


_VMATH = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "tanh", "erf", "sigmoid",
          "softplus", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arctanh")
for _n in _VMATH:
    _make_vmath(_n)


@lowering("sqrt")
def _sqrt(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    return call_intr(ctx.b, "sqrt", v[0])


# The C library, as NumPy uses it (not vectorized; correct to libm's accuracy).
_LIBM: dict[str, str] = {}  # every transcendental op has a vector version now (vmath*)


def _make_libm(name: str, cname: str) -> None:
    @lowering(name)
    def _lower(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
        if not is_float(t):
            raise Unsupported(f"{name} on {t}")
        return libm(ctx.b, cname, v[0])


for _n, _c in _LIBM.items():
    _make_libm(_n, _c)


_FLOAT_ONLY = {*_VMATH, "sqrt", "true_div", "elu", "hard_sigmoid", "softsign", *_LIBM}


def check_apply(name: str, params: tuple, in_dtypes: Sequence[str], impl: Callable | None) -> None:
    """Raise Unsupported unless ``lower_apply`` can lower this op on these dtypes."""
    if name in ("add", "mul") and len(in_dtypes) > 2:
        acc = in_dtypes[0]
        for nxt in in_dtypes[1:]:
            acc = loop_dtypes(name, params, [acc, nxt], impl)[1]
        return
    if name in ("add", "mul") and len(in_dtypes) == 1:
        _check(in_dtypes)
        return
    ins, _ = loop_dtypes(name, params, in_dtypes, impl)
    if name not in lowered_names():
        raise Unsupported(f"no lowering for scalar op {name!r}")
    if name in _FLOAT_ONLY and not all(is_float(t) for t in ins):
        raise Unsupported(f"{name} on {ins}")


def lowered_names() -> set[str]:
    """Scalar op names with a native lowering."""
    return set(_LOWER) | {"cast", "second", "switch"}


__all__ = ["Unsupported", "loop_dtypes", "lower_apply", "lowered_names", "Ctx", "const", "reg_type"]


# The nnet activations' lowerings register themselves on import.
from graphc.backend.llvm import scalar_nnet  # noqa: E402,F401
