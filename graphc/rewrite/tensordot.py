"""``tensordot(a, b)`` -> reshapes (and transposes) around one 2-d ``dot``, which BLAS runs.

Each operand becomes a matrix: ``a`` as (free, contracted), ``b`` as (contracted, free).
When an operand's contracted axes are its leading or trailing ones, in the order the
pairs are taken, that matrix is a reshape (a view of a contiguous value) or the
transpose of one (BLAS reads transposed operands without a copy); otherwise its axes are
transposed first and the reshape copies. The pairs are taken in the order that needs
fewer such copies. The product is reshaped to a's free axes followed by b's, as
``numpy.tensordot`` orders them.

Contracted sizes are checked pair by pair by ``TensorDot`` but only as products by
``dot``: the rewrite applies only when at most one pair is unknown at build time and the
known ones are nonzero, so a mismatch still raises. Only float32/float64 products of one
dtype are rewritten (the ones BLAS computes); gradients are TensorDots themselves
(``TensorDot.grad``), rewritten in turn.
"""

from __future__ import annotations

import math
from typing import Any

from graphc.graph.basic import Apply, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.ops.dimshuffle import transpose
from graphc.ops.linalg import Dot, TensorDot
from graphc.rewrite.framework import register_local
from graphc.rewrite.utils import RUN, fit


def _size(x: Variable, axes: list[int]) -> Any:
    """The product of ``x``'s dims ``axes``: an int when known at build time, else one
    ``x.shape[i]`` or a ReducedSize (computed from the shape alone: a plan computes it once,
    where a product of shape entries would be a native kernel it replays)."""
    from graphc.ops.reduce import ReducedSize
    from graphc.ops.shape import shape

    dims = [x.type.shape[i] for i in axes]
    unknown = [i for i in axes if x.type.shape[i] is None]
    if not unknown:
        return math.prod(dims)
    if len(unknown) == 1 and math.prod(d for d in dims if d is not None) == 1:
        return shape(x)[unknown[0]]
    return ReducedSize(tuple(axes), "int64")(x)


def _matrix(x: Variable, contracted: list[int], first: bool) -> tuple[Variable, int]:
    """``x`` as a (free, contracted) matrix (``first``: (contracted, free)), and whether that
    costs a copy (1) or not (0)."""
    from graphc.ops.shape import reshape

    free = [i for i in range(x.ndim) if i not in contracted]
    k, f = len(contracted), len(free)
    lead, trail = list(range(k)), list(range(f, x.ndim))
    if x.ndim == 1 and k == 1:
        return x, 0  # a vector: dot takes it as it is
    sf, sc = _size(x, free), _size(x, contracted)
    # No product of symbolic sizes where NumPy can infer it (-1 next to a nonzero size): it
    # would be a native kernel on shapes, which a plan replays instead of computing it once.
    if isinstance(sc, int) and sc > 0 and not isinstance(sf, int):
        sf = -1
    elif isinstance(sf, int) and sf > 0 and not isinstance(sc, int):
        sc = -1
    if contracted == (lead if first else trail):
        m = x if x.ndim == 2 and k == 1 else reshape(x, (sc, sf) if first else (sf, sc))
        return m, 0
    if contracted == (trail if first else lead):
        m = x if x.ndim == 2 and k == 1 else reshape(x, (sf, sc) if first else (sc, sf))
        return transpose(m), 0
    order = contracted + free if first else free + contracted
    return reshape(transpose(x, order), (sc, sf) if first else (sf, sc)), 1


@register_local("canonicalize", tracks=[TensorDot], tags=RUN)
def local_tensordot_to_dot(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``tensordot(a, b, axes)`` -> ``reshape(dot(A, B), free_a + free_b)`` (module doc)."""
    from graphc.ops.shape import reshape

    a, b = node.inputs
    out = node.outputs[0]
    if a.dtype != b.dtype or a.dtype not in ("float32", "float64"):
        return None
    pairs = list(zip(node.op.axes_a, node.op.axes_b))
    unknown = [(i, j) for i, j in pairs if a.type.shape[i] is None or b.type.shape[j] is None]
    if len(unknown) > 1 or any(a.type.shape[i] == 0 for i, j in pairs if (i, j) not in unknown):
        return None
    best = None
    for key in (0, 1):
        ordered = sorted(pairs, key=lambda p: p[key])
        ma, ca = _matrix(a, [i for i, _ in ordered], False)
        mb, cb = _matrix(b, [j for _, j in ordered], True)
        if best is None or ca + cb < best[0]:
            best = (ca + cb, ma, mb)
    _, ma, mb = best
    prod = Dot()(ma, mb)
    free_a = [i for i in range(a.ndim) if i not in node.op.axes_a]
    free_b = [j for j in range(b.ndim) if j not in node.op.axes_b]
    if len(free_a) == ma.ndim - 1 and len(free_b) == mb.ndim - 1:
        new = prod
    else:
        dims = [_size(a, [i]) for i in free_a] + [_size(b, [j]) for j in free_b]
        new = reshape(prod, dims)
    new = fit(new, out)
    return [new] if new is not None else None
