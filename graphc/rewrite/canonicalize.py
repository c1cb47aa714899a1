"""Canonicalization: rewrite equivalent expressions into one form so later phases (merge,
stabilize, specialize, fusion) have fewer patterns to recognize.

Each rewrite keeps the exact type of what it replaces; when the simpler form would
have another static shape (a constant that broadcasts ``x`` up, say) it declines.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops import elemwise as E
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise
from graphc.rewrite.framework import register_local
from graphc.rewrite.utils import (
    FAST,
    filled,
    fit,
    is_constant_value,
    known_nonnegative,
    make_constant,
    owner_sop,
    single_client,
    sop_name,
)

_NUMPY = {"add": np.add, "mul": np.multiply}
_IDENTITY = {"add": 0, "mul": 1}


def _rebuild(op: Elemwise, inputs: list[Variable], old: Variable) -> Variable | None:
    """``op(*inputs)`` (or the single input) fitted to ``old``'s type."""
    if len(inputs) == 1:
        return fit(inputs[0], old)
    try:
        new = op(*inputs)
    except (TypeError, ValueError):
        return None
    return new if new.type == old.type else None


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_flatten_add_mul(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``add(add(a, b), c) -> add(a, b, c)`` (and mul), when the inner result has one use
    and the same dtype (so no intermediate rounding or overflow behaviour changes)."""
    name = sop_name(node)
    if name not in ("add", "mul"):
        return None
    out = node.outputs[0]
    new_inputs: list[Variable] = []
    changed = False
    for inp in node.inputs:
        if owner_sop(inp) == name and inp.dtype == out.dtype and single_client(fgraph, inp):
            new_inputs.extend(inp.owner.inputs)
            changed = True
        else:
            new_inputs.append(inp)
    if not changed:
        return None
    new = _rebuild(node.op, new_inputs, out)
    return [new] if new is not None else None


def _order_key(var: Variable) -> tuple:
    # Non-constants first in a stable order; constants last, so ``x + 1`` and ``1 + x`` agree.
    return (isinstance(var, Constant), var.id)


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_add_mul_constants(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """Combine the constants of an add/mul into one, drop identities (``x + 0``, ``x * 1``)
    and order the operands (constants last)."""
    name = sop_name(node)
    if name not in ("add", "mul"):
        return None
    out = node.outputs[0]
    consts = [i for i in node.inputs if isinstance(i, Constant)]
    others = sorted((i for i in node.inputs if not isinstance(i, Constant)), key=_order_key)
    new_consts: list[Variable] = list(consts)
    if len(consts) > 1:
        dtype = np.result_type(*[c.data for c in consts]).name
        with np.errstate(all="ignore"):
            value = reduce(_NUMPY[name], [c.data.astype(dtype) for c in consts])
        new_consts = [make_constant(value, dtype)]
    if new_consts and others:
        data = new_consts[0].data  # type: ignore[attr-defined]
        if data.size and np.all(data == _IDENTITY[name]):
            candidate = _rebuild(node.op, others, out)
            if candidate is not None:
                return [candidate]
    new_inputs = others + new_consts
    if new_inputs == node.inputs:
        return None
    new = _rebuild(node.op, new_inputs, out)
    return [new] if new is not None else None


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_useless_arith(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x - 0 -> x``, ``0 - x -> -x``, ``x - x -> 0``, ``--x -> x``, ``x / 1 -> x``,
    ``x / x -> 1`` (as Theano: x is assumed nonzero), ``max(x, x) -> x``."""
    name = sop_name(node)
    out = node.outputs[0]
    ins = node.inputs
    new: Variable | None = None
    if name == "sub":
        x, y = ins
        if x is y:
            new = filled(x, 0, out)
        elif is_constant_value(y, 0):
            new = fit(x, out)
        elif is_constant_value(x, 0):
            new = fit(E.neg(y), out)
    elif name == "neg" and owner_sop(ins[0]) == "neg":
        new = fit(ins[0].owner.inputs[0], out)
    elif name == "true_div":
        x, y = ins
        if x is y and out.type.is_float:
            new = filled(x, 1, out)
        elif is_constant_value(y, 1):
            new = fit(x, out)
    elif name in ("maximum", "minimum") and ins[0] is ins[1]:
        new = fit(ins[0], out)
    return [new] if new is not None else None


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_log_exp(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``log(exp(x)) -> x``; ``exp(log(x)) -> x`` only when x is known to be >= 0."""
    name = sop_name(node)
    (x,) = node.inputs if len(node.inputs) == 1 else (None,)
    if x is None:
        return None
    inner = owner_sop(x)
    out = node.outputs[0]
    if name == "log" and inner == "exp":
        arg = x.owner.inputs[0]
        return [fit(arg, out)] if arg.type.is_float and fit(arg, out) is not None else None
    if name == "exp" and inner == "log":
        arg = x.owner.inputs[0]
        if arg.type.is_float and known_nonnegative(arg):
            new = fit(arg, out)
            return [new] if new is not None else None
    return None


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_pow_canonical(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x ** 1 -> x``, ``x ** 0 -> 1``, ``x ** -1 -> 1 / x`` (floats)."""
    if sop_name(node) != "pow":
        return None
    x, y = node.inputs
    out = node.outputs[0]
    new: Variable | None = None
    if is_constant_value(y, 1):
        new = fit(x, out)
    elif is_constant_value(y, 0):
        new = filled(x, 1, out)
    elif is_constant_value(y, -1) and out.type.is_float:
        new = fit(E.true_div(make_constant(1, out.dtype), x), out)
    return [new] if new is not None else None


def _compose(inner: tuple, outer: tuple) -> tuple:
    return tuple("x" if o == "x" else inner[o] for o in outer)


@register_local("canonicalize", tracks=[DimShuffle], tags=FAST)
def local_dimshuffle_dimshuffle(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """Two DimShuffles (transposes included) become one; an identity one disappears."""
    op = node.op
    (x,) = node.inputs
    out = node.outputs[0]
    if op.new_order == tuple(range(op.input_ndim)):
        return [fit(x, out)] if fit(x, out) is not None else None
    if x.owner is None or not isinstance(x.owner.op, DimShuffle):
        return None
    inner = x.owner.op
    src = x.owner.inputs[0]
    order = _compose(inner.new_order, op.new_order)
    if order == tuple(range(src.ndim)):
        new = fit(src, out)
    else:
        try:
            new = fit(DimShuffle(src.ndim, order)(src), out)
        except ValueError:
            return None
    return [new] if new is not None else None


def _exact_widening(src: str, dst: str) -> bool:
    """Every value of ``src`` is representable exactly in ``dst``."""
    a, b = np.dtype(src), np.dtype(dst)
    if not np.can_cast(a, b, "safe"):
        return False
    if a.kind in "iu" and b.kind == "f":
        return a.itemsize * 8 <= np.finfo(b).nmant + 1
    return True


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_useless_cast(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``cast(x, x.dtype) -> x``; ``cast(cast(x, wider), x.dtype) -> x``;
    ``cast(cast(x, d1), d2) -> cast(x, d2)`` when ``d1`` holds ``x`` exactly."""
    if sop_name(node) != "cast":
        return None
    (x,) = node.inputs
    out = node.outputs[0]
    if x.dtype == out.dtype:
        return [fit(x, out)]
    if owner_sop(x) == "cast":
        src = x.owner.inputs[0]
        if _exact_widening(src.dtype, x.dtype):
            new = fit(src, out) if src.dtype == out.dtype else fit(E.cast(src, out.dtype), out)
            return [new] if new is not None else None
    return None


def _reduce_cls() -> Any:
    try:
        from graphc.ops.reduce import Reduce
    except ImportError:
        return None
    return Reduce


def _reduce_tracks() -> list[type]:
    cls = _reduce_cls()
    return [cls] if cls is not None else []


@register_local("canonicalize", tracks=_reduce_tracks(), tags=FAST)
def local_reduce_reduce(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``sum(sum(x, a), b) -> sum(x, a ∪ b)`` (and max/min/prod/all/any), when the inner
    result has one use and the same dtype; a reduction over no axes is a cast."""
    Reduce = _reduce_cls()
    op = node.op
    (x,) = node.inputs
    out = node.outputs[0]
    if not op.axis:
        return [fit(x, out)] if fit(x, out) is not None else None
    if x.owner is None or not isinstance(x.owner.op, Reduce):
        return None
    inner = x.owner.op
    if inner.kind != op.kind or inner.dtype != op.dtype or not single_client(fgraph, x):
        return None
    src = x.owner.inputs[0]
    kept = [i for i in range(src.ndim) if i not in inner.axis]
    axes = tuple(sorted(set(inner.axis) | {kept[j] for j in op.axis}))
    new = fit(Reduce(op.kind, axes, op.dtype)(src), out)
    return [new] if new is not None else None
