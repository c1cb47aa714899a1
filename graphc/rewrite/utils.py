"""Small helpers shared by the rewrites: matching elementwise nodes, reading constants,
and making a replacement fit the exact type of what it replaces."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import OUTPUT, FunctionGraph
from graphc.graph.type import TensorType
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise, cast, second
from graphc.tensor.basic import constant

# Both the fast_compile and fast_run levels run rewrites tagged FAST; RUN is fast_run only.
FAST = ("fast_run", "fast_compile")
RUN = ("fast_run",)


def sop_name(node: Apply | None) -> str | None:
    """The scalar op name of an Elemwise node (``'add'``, ``'cast'``...), else None."""
    if node is not None and isinstance(node.op, Elemwise):
        return node.op.scalar_op.name
    return None


def owner_sop(var: Variable) -> str | None:
    return sop_name(var.owner)


def is_op(var: Variable, cls: type) -> bool:
    return var.owner is not None and isinstance(var.owner.op, cls)


def constant_data(var: Variable, through_fill: bool = False) -> np.ndarray | None:
    """The value of ``var`` if it is a constant, looking through broadcast-only DimShuffles.

    With ``through_fill``, ``second(x, c)`` counts as ``c``: right for its *value*, but not
    for its shape, which is ``x``'s (so never drop such an operand on that basis).
    """
    while var.owner is not None:
        op = var.owner.op
        if isinstance(op, DimShuffle) and not op.dropped:
            var = var.owner.inputs[0]
        elif through_fill and sop_name(var.owner) == "second":
            var = var.owner.inputs[1]
        else:
            return None
    if isinstance(var, Constant):
        return var.data
    return None


def scalar_constant(var: Variable) -> Any:
    """The single value every element of a constant ``var`` has, or None."""
    data = constant_data(var)
    if data is None or data.size == 0:
        return None
    first = data.flat[0]
    if data.size > 1 and not np.all(data == first):
        return None
    return first.item()


def is_constant_value(var: Variable, value: float) -> bool:
    v = scalar_constant(var)
    return v is not None and v == value


def is_scalar_like(var: Variable) -> bool:
    """Statically a single element (every axis has length 1)."""
    return all(s == 1 for s in var.type.shape)


def single_client(fgraph: FunctionGraph, var: Variable) -> bool:
    """``var`` feeds exactly one node and is not a graph output."""
    clients = fgraph.clients.get(var, [])
    return len(clients) == 1 and clients[0][0] != OUTPUT


def fit(new: Variable | None, old: Variable) -> Variable | None:
    """``new`` as a replacement for ``old``: cast to its dtype if needed, or None if the
    static shapes differ (a rewrite then declines rather than change a type)."""
    if new is None:
        return None
    if new.type.shape != old.type.shape:
        return None
    if new.dtype != old.dtype:
        new = cast(new, old.dtype)
    return new if new.type == old.type else None


def filled(like: Variable, value: float, old: Variable) -> Variable | None:
    """``value`` broadcast to the shape of ``like``, typed as ``old``."""
    c = constant(np.asarray(value, dtype=old.dtype))
    return fit(second(like, c), old)


def make_constant(value: Any, dtype: str) -> Constant:
    arr = np.asarray(value, dtype=dtype)
    return Constant(TensorType(dtype, arr.shape), arr)


def is_random_op(op: Any) -> bool:
    try:
        from graphc.ops.random import RandomVariable
    except ImportError:  # the random module may be mid-edit
        return False
    return isinstance(op, RandomVariable)


def known_nonnegative(var: Variable) -> bool:
    """True when ``var`` cannot hold a negative number (so ``exp(log(var)) == var``)."""
    data = constant_data(var, through_fill=True)
    if data is not None:
        with np.errstate(invalid="ignore"):
            return bool(np.all(data >= 0))
    return owner_sop(var) in ("exp", "sqrt", "abs", "sqr", "exp2", "cosh")
