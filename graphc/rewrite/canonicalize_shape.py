"""Canonicalizations about shapes: useless SumToShape/fill/reshape/subtensor, reshape of
reshape, and shapes known at build time as constants.

Rewrites that need "these two have the same run-time shape" ask
:mod:`graphc.rewrite.shapes`; a None length may be 1 at run time and broadcast, so
equal static types alone prove nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.elemwise import Elemwise, SumToShape
from graphc.rewrite.framework import register_local
from graphc.rewrite.shapes import shape_info
from graphc.rewrite.utils import FAST, fit, make_constant, single_client, sop_name


def _tracks(module: str, *names: str) -> list[type]:
    """Op classes of a module that may be mid-edit: whatever of them exists."""
    try:
        mod = __import__(f"graphc.ops.{module}", fromlist=list(names))
    except ImportError:
        return []
    return [getattr(mod, n) for n in names if hasattr(mod, n)]


@register_local("canonicalize", tracks=[SumToShape], tags=FAST)
def local_sum_to_shape(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``SumToShape(g, like)`` -> ``g`` when their shapes provably agree, else a plain
    ``sum`` over the axes where ``like`` is statically 1 (when the others agree)."""
    from graphc.ops.reduce import Reduce

    g, like = node.inputs
    out = node.outputs[0]
    lead = g.ndim - like.ndim
    if lead < 0:
        return None
    info = shape_info(fgraph)
    axes = list(range(lead))
    for i, n in enumerate(like.type.shape):
        gn = g.type.shape[lead + i]
        if n == 1:
            if gn != 1:
                axes.append(lead + i)
        elif not info.same_dim(g, lead + i, like, i):
            return None
    if not axes:
        new = fit(g, out)
        return [new] if new is not None else None
    r = Reduce("add", tuple(axes), g.dtype)(g)
    order: list[Any] = []
    k = 0
    for i in range(like.ndim):
        if lead + i in axes:
            order.append("x")
        else:
            order.append(k)
            k += 1
    if order != list(range(r.ndim)):
        r = DimShuffle(r.ndim, order)(r)
    new = fit(r, out)
    return [new] if new is not None else None


@register_local("canonicalize", tracks=[Elemwise], tags=FAST)
def local_useless_fill(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``second(x, v) -> v`` when ``x`` cannot broadcast ``v`` to a larger shape."""
    if sop_name(node) != "second":
        return None
    x, v = node.inputs
    if x.ndim != v.ndim or not shape_info(fgraph).broadcasts_into(x, v):
        return None
    new = fit(v, node.outputs[0])
    return [new] if new is not None else None


_SHAPE = _tracks("shape", "Shape")


@register_local("canonicalize", tracks=_SHAPE, tags=FAST)
def local_shape_of_known(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x.shape`` -> a constant when ``x``'s static shape is fully known."""
    (x,) = node.inputs
    if None in x.type.shape:
        return None
    out = node.outputs[0]
    return [fit(make_constant(np.asarray(x.type.shape, dtype=out.dtype).reshape(out.type.shape),
                              out.dtype), out)]


_SUBTENSOR = _tracks("subtensor", "Subtensor")


@register_local("canonicalize", tracks=_SUBTENSOR, tags=FAST)
def local_subtensor_canonical(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``x.shape[i]`` -> a constant when that length is known; ``x[:, :]`` -> ``x``."""
    from graphc.ops.shape import shape_dim_of

    out = node.outputs[0]
    dim = shape_dim_of(out)
    if dim is not None:
        x, i = dim
        n = x.type.shape[i]
        if n is not None:
            return [fit(make_constant(n, out.dtype), out)]
        return None
    entries = node.op.idx_list
    full = all(e[0] == "s" and e[1] is None and e[2] is None and e[3] in (None, 1) for e in entries)
    if full and len(node.inputs) == 1:
        new = fit(node.inputs[0], out)
        return [new] if new is not None else None
    return None


_RESHAPE = _tracks("shape", "Reshape", "Flatten")


def _is_own_shape(shp: Variable, x: Variable) -> bool:
    """``shp`` is, entry by entry, the shape of ``x``."""
    from graphc.ops.shape import Shape, Stack, shape_dim_of

    if shp.owner is not None and isinstance(shp.owner.op, Shape):
        return shp.owner.inputs[0] is x
    if isinstance(shp, Constant):
        return None not in x.type.shape and tuple(int(v) for v in shp.data) == x.type.shape
    if shp.owner is None or not isinstance(shp.owner.op, Stack) or shp.owner.op.axis != 0:
        return False
    entries = shp.owner.inputs
    if len(entries) != x.ndim:
        return False
    for j, e in enumerate(entries):
        dim = shape_dim_of(e)
        if dim is not None and dim[0] is x and dim[1] == j:
            continue
        if isinstance(e, Constant) and x.type.shape[j] is not None and int(e.data) == x.type.shape[j]:
            continue
        return False
    return True


@register_local("canonicalize", tracks=_RESHAPE, tags=FAST)
def local_reshape_canonical(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """Useless reshapes and flattens go; ``reshape(reshape(x, s1), s2) -> reshape(x, s2)``."""
    from graphc.ops.shape import Flatten, Reshape

    out = node.outputs[0]
    x = node.inputs[0]
    if isinstance(node.op, Flatten):
        if node.op.ndim == x.ndim:
            new = fit(x, out)
            return [new] if new is not None else None
        return None
    shp = node.inputs[1]
    if x.ndim == node.op.ndim and _is_own_shape(shp, x):
        new = fit(x, out)
        if new is not None:
            return [new]
    if x.owner is not None and isinstance(x.owner.op, Reshape | Flatten) and single_client(fgraph, x):
        try:
            new = fit(Reshape(node.op.ndim)(x.owner.inputs[0], shp), out)
        except (TypeError, ValueError):
            return None
        return [new] if new is not None else None
    return None


def _shape_source(fgraph: FunctionGraph, var: Variable) -> Variable:
    """The earliest variable provably shaped like ``var``, walking back through ops that
    keep the shape (so an op reading only a shape does not keep a computation alive)."""
    info = shape_info(fgraph)
    current = var
    for _ in range(64):
        node = current.owner
        if node is None:
            break
        step = None
        for inp in node.inputs:
            if inp.ndim == current.ndim and info.same_shape(inp, current):
                step = inp
                if inp.owner is None:
                    break
        if step is None:
            break
        current = step
    return current


_REDUCED_SIZE = _tracks("reduce", "ReducedSize")
_SCATTER = _tracks("nnet", "LabelScatter")


def _shape_only_input(node: Apply) -> int | None:
    """The position of the input whose value ``node`` never reads, only its shape."""
    if isinstance(node.op, Elemwise):
        return 0 if sop_name(node) == "second" else None
    if isinstance(node.op, SumToShape):
        return 1
    if _SCATTER and isinstance(node.op, tuple(_SCATTER)):
        return 2
    return 0  # Shape, ReducedSize


@register_local("canonicalize", "stabilize", tracks=[Elemwise, SumToShape, *_SHAPE, *_REDUCED_SIZE,
                                                      *_SCATTER], tags=FAST)
def local_shape_source(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """Inputs read only for their shape (``x.shape``, ``ReducedSize(x)``, the first operand
    of ``second``, the ``like`` of SumToShape and LabelScatter) are read from the earliest
    variable of that shape, so they do not keep a computation alive or block fusion."""
    pos = _shape_only_input(node)
    if pos is None:
        return None
    x = node.inputs[pos]
    src = _shape_source(fgraph, x)
    if src is x:
        return None
    inputs = list(node.inputs)
    inputs[pos] = src
    try:
        new = fit(node.op(*inputs), node.outputs[0])
    except (TypeError, ValueError):
        return None
    return [new] if new is not None else None


_REDUCE = _tracks("reduce", "Reduce")


@register_local("canonicalize", "stabilize", tracks=_REDUCE, tags=FAST)
def local_sum_of_label_scatter(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``sum(scatter(g, labels), axis=-1) -> g``: each row holds ``g`` once, zeros elsewhere."""
    try:
        from graphc.ops.nnet import LabelScatter
    except ImportError:
        return None
    op = node.op
    (x,) = node.inputs
    last = x.ndim - 1
    if op.kind != "add" or last not in op.axis or x.owner is None \
            or not isinstance(x.owner.op, LabelScatter):
        return None
    g = x.owner.inputs[0]
    if g.dtype != op.dtype or g.dtype != x.dtype:
        return None
    rest = tuple(a for a in op.axis if a != last)
    new = fit(type(op)("add", rest, op.dtype)(g) if rest else g, node.outputs[0])
    return [new] if new is not None else None
