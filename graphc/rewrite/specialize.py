"""Specialization: replace general forms by the cheaper special ops that compute them.

- ``dot(A, B) + C``, ``alpha * dot(A, B) + beta * C`` and ``beta * C - alpha * dot(A, B)``
  -> one :class:`~graphc.rewrite.gemm.Gemm` (bias adds, SGD updates, momentum);
- ``x ** 2 -> sqr(x)``, ``x ** 0.5 -> sqrt(x)``, ``x ** -0.5 -> 1 / sqrt(x)``;
- ``x * -1 -> -x``;
- ``x / c -> x * (1 / c)`` for a float constant ``c`` (so ``mean`` is ``sum * (1 / n)``);
- ``softmax(x)`` -> the softmax output of a ``CrossentropySoftmax(x, t)`` computing it anyway,
  else ``exp(log_softmax(x))`` when the log-softmax is computed anyway.
"""

from __future__ import annotations

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops import elemwise as E
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise
from graphc.rewrite.framework import register_local
from graphc.rewrite.gemm import Gemm
from graphc.rewrite.utils import (
    RUN,
    fit,
    is_constant_value,
    is_scalar_like,
    make_constant,
    scalar_constant,
    single_client,
    sop_name,
)


def _one(node: Apply, new: Variable | None) -> list[Variable] | None:
    new = fit(new, node.outputs[0]) if new is not None else None
    return [new] if new is not None else None


def _scalar_constant_input(var: Variable) -> bool:
    return isinstance(var, Constant) and is_scalar_like(var)


@register_local("specialize", tracks=[Elemwise], tags=RUN)
def local_pow_specialize(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x ** 2 -> sqr(x)``, ``x ** 0.5 -> sqrt(x)``, ``x ** -0.5 -> 1 / sqrt(x)``."""
    if sop_name(node) != "pow":
        return None
    x, y = node.inputs
    out = node.outputs[0]
    if not _scalar_constant_input(y) or x.dtype != out.dtype:
        return None
    p = scalar_constant(y)
    if p == 2:
        return _one(node, E.sqr(x))
    if out.type.is_float and p == 0.5:
        return _one(node, E.sqrt(x))
    if out.type.is_float and p == -0.5:
        return _one(node, E.true_div(make_constant(1, out.dtype), E.sqrt(x)))
    return None


@register_local("specialize", tracks=[Elemwise], tags=RUN)
def local_mul_minus_one(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x * -1 -> -x``."""
    if sop_name(node) != "mul" or len(node.inputs) != 2:
        return None
    for k, c in enumerate(node.inputs):
        if _scalar_constant_input(c) and is_constant_value(c, -1):
            x = node.inputs[1 - k]
            if x.dtype == node.outputs[0].dtype:
                return _one(node, E.neg(x))
    return None


@register_local("specialize", tracks=[Elemwise], tags=RUN)
def local_div_to_mul(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x / c -> x * (1 / c)`` for a float scalar constant ``c``."""
    if sop_name(node) != "true_div":
        return None
    x, c = node.inputs
    out = node.outputs[0]
    if not _scalar_constant_input(c) or not out.type.is_float or x.dtype != out.dtype:
        return None
    value = scalar_constant(c)
    if value == 0 or value is None or c.dtype != out.dtype:
        return None
    with np.errstate(all="ignore"):
        recip = np.asarray(1, dtype=out.dtype) / np.asarray(value, dtype=out.dtype)
    if not np.isfinite(recip):
        return None
    return _one(node, E.mul(x, make_constant(np.full(c.type.shape, recip), out.dtype)))


# ---------------------------------------------------------------------------------------
def _dot_cls() -> type | None:
    try:
        from graphc.ops.linalg import Dot
    except ImportError:
        return None
    return Dot


def _as_scalar(var: Variable) -> Variable:
    """A 0-d view of a variable whose every axis has length 1."""
    if var.ndim == 0:
        return var
    if isinstance(var, Constant):
        return make_constant(var.data.reshape(()), var.dtype)
    return DimShuffle(var.ndim, [])(var)


def _scaled_dot(fgraph: FunctionGraph, var: Variable) -> tuple[Variable, Apply] | None:
    """``(alpha, dot_node)`` when ``var`` is ``dot(A, B)`` or ``alpha * dot(A, B)``, the dot
    being used only there."""
    Dot = _dot_cls()
    if Dot is None:
        return None
    if var.owner is not None and isinstance(var.owner.op, Dot) and single_client(fgraph, var):
        return make_constant(1, var.dtype), var.owner
    if sop_name(var.owner) == "mul" and len(var.owner.inputs) == 2 and single_client(fgraph, var):
        for k, d in enumerate(var.owner.inputs):
            s = var.owner.inputs[1 - k]
            if (d.owner is not None and isinstance(d.owner.op, Dot) and single_client(fgraph, d)
                    and is_scalar_like(s) and s.dtype == d.dtype):
                return _as_scalar(s), d.owner
    return None


def _scaled(fgraph: FunctionGraph, var: Variable) -> tuple[Variable, Variable]:
    """``(beta, z)`` with ``var == beta * z`` for a scalar-like ``beta``, else ``(1, var)``."""
    if sop_name(var.owner) == "mul" and len(var.owner.inputs) == 2 and single_client(fgraph, var):
        for k, s in enumerate(var.owner.inputs):
            z = var.owner.inputs[1 - k]
            if is_scalar_like(s) and s.dtype == z.dtype == var.dtype and z.type.shape == var.type.shape:
                return _as_scalar(s), z
    return make_constant(1, var.dtype), var


def _gemm(c: Variable, alpha: Variable, dot: Apply, beta: Variable, out: Variable) -> Variable | None:
    a, b = dot.inputs
    if len({c.dtype, a.dtype, b.dtype, out.dtype, alpha.dtype, beta.dtype}) != 1 \
            or not out.type.is_float:
        return None
    if c.ndim != dot.outputs[0].ndim:
        return None
    try:
        return Gemm()(c, alpha, a, b, beta)
    except (TypeError, ValueError):
        return None


@register_local("specialize", tracks=[Elemwise], tags=(*RUN, "gemm"))
def local_gemm(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``C + alpha * dot(A, B)`` (any operand order, any number of addends) and
    ``C - alpha * dot(A, B)`` / ``alpha * dot(A, B) - C`` -> Gemm."""
    name = sop_name(node)
    out = node.outputs[0]
    if name == "add":
        ins = node.inputs
        for k, v in enumerate(ins):
            found = _scaled_dot(fgraph, v)
            if found is None:
                continue
            rest = ins[:k] + ins[k + 1:]
            beta, c = _scaled(fgraph, rest[0]) if len(rest) == 1 else (make_constant(1, out.dtype),
                                                                        E.add(*rest))
            return _one(node, _gemm(c, found[0], found[1], beta, out))
        return None
    if name == "sub":
        x, y = node.inputs
        found = _scaled_dot(fgraph, y)
        if found is not None:
            beta, c = _scaled(fgraph, x)
            return _one(node, _gemm(c, E.neg(found[0]), found[1], beta, out))
        found = _scaled_dot(fgraph, x)
        if found is not None:
            beta, c = _scaled(fgraph, y)
            return _one(node, _gemm(c, found[0], found[1], E.neg(beta), out))
    return None


# ---------------------------------------------------------------------------------------
def _nnet_cls(name: str) -> type | None:
    try:
        from graphc.ops import nnet
    except ImportError:
        return None
    return getattr(nnet, name, None)


def _tracks(*names: str) -> list[type]:
    return [c for c in (_nnet_cls(n) for n in names) if c is not None]


def _crossentropy_softmax_of(fgraph: FunctionGraph, x: Variable) -> Apply | None:
    """A CrossentropySoftmax node of logits ``x`` in the graph (its 2nd output is softmax(x))."""
    cls = _nnet_cls("CrossentropySoftmax")
    if cls is None:
        return None
    for client, _ in fgraph.clients.get(x, []):
        if isinstance(client, Apply) and isinstance(client.op, cls) and client.inputs[0] is x:
            return client
    return None


@register_local("specialize", tracks=[*_tracks("Softmax"), Elemwise], tags=RUN)
def local_softmax_from_crossentropy(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``softmax(x)`` and ``exp(log_softmax(x))`` -> the softmax output of a
    ``CrossentropySoftmax(x, t)`` in the graph: the loss's pass over the rows computed it
    already (gradients of cross-entropies multiply by it)."""
    if isinstance(node.op, Elemwise):
        if sop_name(node) != "exp":
            return None
        lsm = node.inputs[0]
        cls = _nnet_cls("LogSoftmax")
        if cls is None or lsm.owner is None or not isinstance(lsm.owner.op, cls):
            return None
        src = lsm.owner
    else:
        src = node
    if src.op.axis != 1 or src.inputs[0].ndim != 2:
        return None
    xent = _crossentropy_softmax_of(fgraph, src.inputs[0])
    return _one(node, xent.outputs[1]) if xent is not None else None


@register_local("specialize", tracks=_tracks("Softmax"), tags=RUN)
def local_softmax_from_log_softmax(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``softmax(x) -> exp(log_softmax(x))`` when ``log_softmax(x)`` is computed anyway
    (cross-entropy graphs need both): one pass over the row fewer, and the ``exp``
    fuses into the gradient's elementwise work."""
    LogSoftmax = _nnet_cls("LogSoftmax")
    (x,) = node.inputs
    for client, _ in fgraph.clients.get(x, []):
        if isinstance(client, Apply) and isinstance(client.op, LogSoftmax) \
                and client.op.axis == node.op.axis:
            return _one(node, E.exp(client.outputs[0]))
    return None


def _argmax_tracks() -> list[type]:
    try:
        from graphc.ops.reduce import Argmax, Argmin
    except ImportError:
        return []
    return [Argmax, Argmin]


@register_local("specialize", tracks=_argmax_tracks(), tags=RUN)
def local_argmax_pushdown(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``argmax(softmax(x)) -> argmax(x)`` along the softmax axis (as Theano): softmax keeps
    the order of a row. (Only where rounding makes two different logits' probabilities
    equal can the winner differ; then the logits' own argmax is the better answer.)"""
    (x,) = node.inputs
    Softmax = _nnet_cls("Softmax")
    if Softmax is not None and x.owner is not None and isinstance(x.owner.op, Softmax):
        if node.op.axis == (x.owner.op.axis,) and type(node.op).__name__ == "Argmax":
            return _one(node, type(node.op)(node.op.axis)(x.owner.inputs[0]))
    Xent = _nnet_cls("CrossentropySoftmax")  # its second output is softmax(x) over the rows
    if Xent is not None and x.owner is not None and isinstance(x.owner.op, Xent) and x.index == 1:
        if node.op.axis == (1,) and type(node.op).__name__ == "Argmax":
            return _one(node, type(node.op)(node.op.axis)(x.owner.inputs[0]))
    return None
