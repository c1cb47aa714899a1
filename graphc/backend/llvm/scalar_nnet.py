"""Lowerings of the nnet activations (graphc.ops.nnet) as their NumPy references compute them."""

from __future__ import annotations

from llvmlite import ir

from graphc.backend.llvm import vmath
from graphc.backend.llvm.irutil import call_intr, const, fconst, is_float
from graphc.backend.llvm.scalar import Ctx, Unsupported, _max, lowering


@lowering("relu")
def _relu(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b, x = ctx.b, v[0]
    alpha = float(ctx.params[0]) if ctx.params else 0.0
    if alpha == 0:  # np.maximum(x, 0)
        return _max(b, x, const(t, 0), t, ">=")
    if not is_float(t):
        raise Unsupported(f"leaky relu on {t}")
    return b.select(b.fcmp_ordered(">", x, fconst(x.type, 0.0)), x, b.fmul(const(t, alpha), x))


@lowering("elu")
def _elu(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b, x = ctx.b, v[0]
    alpha = float(ctx.params[0])
    neg_part = b.fmul(const(t, alpha), vmath.call_math(b, "expm1", _max(b, x, fconst(x.type, 0.0), t, "<=")))
    return b.select(b.fcmp_ordered(">", x, fconst(x.type, 0.0)), x, neg_part)


@lowering("hard_sigmoid")
def _hard_sigmoid(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b, x = ctx.b, v[0]
    y = b.fadd(b.fmul(x, const(t, 0.2)), const(t, 0.5))
    return _max(b, _max(b, y, const(t, 0), t, ">="), const(t, 1), t, "<=")


@lowering("softsign")
def _softsign(ctx: Ctx, v: list[ir.Value], t: str) -> ir.Value:
    b, x = ctx.b, v[0]
    return b.fdiv(x, b.fadd(const(t, 1), call_intr(b, "fabs", x)))
