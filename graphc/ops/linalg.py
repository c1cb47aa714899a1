"""Linear algebra: ``dot`` (Theano semantics), ``matmul`` (batched), ``outer``, ``tensordot``.

:class:`Dot` handles 1-d and 2-d operands (the cases BLAS lowers); higher ranks
go through :class:`TensorDot` with NumPy's ``dot`` contraction. :class:`MatMul`
is the batched product of operands of rank >= 2 (1-d operands are lifted by a
DimShuffle, as NumPy does implicitly). Result dtypes follow NumPy promotion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType
from graphc.ops import elemwise as E
from graphc.ops.dimshuffle import DimShuffle, dimshuffle, transpose
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable

__all__ = ["Dot", "MatMul", "TensorDot", "dot", "matmul", "outer", "tensordot"]


def _result_dtype(a: Variable, b: Variable) -> str:
    return np.result_type(a.dtype, b.dtype).name


def _check_inner(what: str, a: Variable, b: Variable, da: int | None, db: int | None) -> None:
    if da is not None and db is not None and da != db:
        raise ValueError(
            f"{what}: shapes {a.type.shape} and {b.type.shape} are not aligned "
            f"(inner dimensions {da} != {db})"
        )


def _grad_for(inp: Variable, g: Variable) -> Variable | None:
    return E.cast(g, inp.dtype) if inp.type.is_float else None


def _swap_last(x: Variable) -> Variable:
    order = list(range(x.ndim))
    order[-2], order[-1] = order[-1], order[-2]
    return DimShuffle(x.ndim, order)(x)


# ---------------------------------------------------------------------------------------
class Dot(Op):
    """Product of 1-d or 2-d operands: vector.vector -> scalar, matrix.vector, vector.matrix,
    matrix.matrix."""

    def make_node(self, a: Any, b: Any) -> Apply:
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        if a.ndim not in (1, 2) or b.ndim not in (1, 2):
            raise TypeError(f"Dot takes 1-d or 2-d operands, got {a.ndim}-d and {b.ndim}-d")
        _check_inner("dot", a, b, a.type.shape[-1], b.type.shape[0])
        shape = a.type.shape[:-1] + b.type.shape[1:]
        return Apply(self, [a, b], [TensorType(_result_dtype(a, b), shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        a, b = inputs
        if a.shape[-1] != b.shape[0]:
            raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned")
        return [np.asarray(np.dot(a, b), dtype=node.outputs[0].dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        (a, b), (gz,) = inputs, grads
        if a.ndim == 1 and b.ndim == 1:
            ga, gb = E.mul(gz, b), E.mul(gz, a)
        elif a.ndim == 1:  # (k,) . (k, n) -> (n,)
            ga, gb = dot(b, gz), outer(a, gz)
        elif b.ndim == 1:  # (m, k) . (k,) -> (m,)
            ga, gb = outer(gz, b), dot(transpose(a), gz)
        else:
            ga, gb = dot(gz, transpose(b)), dot(transpose(a), gz)
        return [_grad_for(a, ga), _grad_for(b, gb)]


def dot(a: Any, b: Any) -> Variable:
    """Theano's ``dot``: the inner product over the last axis of ``a`` and the first
    (or second-to-last, for ranks > 2, as ``numpy.dot``) axis of ``b``.

    A 0-d operand (or a Python number) makes it an elementwise product.
    """
    if isinstance(a, int | float) or isinstance(b, int | float):
        return E.mul(a, b)
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        return E.mul(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return Dot()(a, b)
    return tensordot(a, b, [[a.ndim - 1], [max(b.ndim - 2, 0)]])



# ---------------------------------------------------------------------------------------
def _broadcast_batch(a: Variable, b: Variable, what: str) -> tuple:
    sa, sb = a.type.shape[:-2], b.type.shape[:-2]
    n = max(len(sa), len(sb))
    sa = (1,) * (n - len(sa)) + sa
    sb = (1,) * (n - len(sb)) + sb
    try:
        return E.broadcast_static_shapes([sa, sb], what)
    except ValueError:
        raise ValueError(
            f"{what}: batch dimensions of shapes {a.type.shape} and {b.type.shape} cannot be "
            f"broadcast together"
        ) from None


class MatMul(Op):
    """Batched matrix product of operands of rank >= 2, broadcasting the batch axes."""

    def make_node(self, a: Any, b: Any) -> Apply:
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        if a.ndim < 2 or b.ndim < 2:
            raise TypeError(f"MatMul takes operands of rank >= 2, got {a.ndim}-d and {b.ndim}-d")
        _check_inner("matmul", a, b, a.type.shape[-1], b.type.shape[-2])
        batch = _broadcast_batch(a, b, "matmul")
        shape = batch + (a.type.shape[-2], b.type.shape[-1])
        return Apply(self, [a, b], [TensorType(_result_dtype(a, b), shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        a, b = inputs
        return [np.asarray(np.matmul(a, b), dtype=node.outputs[0].dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        (a, b), (gz,) = inputs, grads
        # Broadcast batch axes (and whole missing leading axes) are summed back.
        ga = E.sum_to_shape(matmul(gz, _swap_last(b)), a) if a.type.is_float else None
        gb = E.sum_to_shape(matmul(_swap_last(a), gz), b) if b.type.is_float else None
        return [None if ga is None else E.cast(ga, a.dtype), None if gb is None else E.cast(gb, b.dtype)]


def matmul(a: Any, b: Any) -> Variable:
    """``numpy.matmul``: batched matrix product with broadcast batch axes; a 1-d operand
    is a row (left) or column (right) vector whose axis is removed from the result."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must not be scalars (got {a.ndim}-d and {b.ndim}-d)")
    if a.ndim <= 2 and b.ndim <= 2:
        return Dot()(a, b)
    a2 = dimshuffle(a, "x", 0) if a.ndim == 1 else a
    b2 = dimshuffle(b, 0, "x") if b.ndim == 1 else b
    out = MatMul()(a2, b2)
    if b.ndim == 1:
        out = DimShuffle(out.ndim, list(range(out.ndim - 1)))(out)
    if a.ndim == 1:
        out = DimShuffle(out.ndim, list(range(out.ndim - 2)) + [out.ndim - 1])(out)
    return out


def outer(a: Any, b: Any) -> Variable:
    """Outer product of two vectors (higher-rank operands are flattened, as ``numpy.outer``)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if a.ndim != 1 or b.ndim != 1:
        from graphc.ops.shape import flatten

        a = flatten(a, 1) if a.ndim != 1 else a
        b = flatten(b, 1) if b.ndim != 1 else b
    return E.mul(dimshuffle(a, 0, "x"), dimshuffle(b, "x", 0))


# ---------------------------------------------------------------------------------------
class TensorDot(Op):
    """``numpy.tensordot`` contracting ``axes_a[k]`` of ``a`` with ``axes_b[k]`` of ``b``."""

    __props__ = ("axes_a", "axes_b")

    def __init__(self, axes_a: Sequence[int], axes_b: Sequence[int]) -> None:
        self.axes_a, self.axes_b = tuple(axes_a), tuple(axes_b)

    def make_node(self, a: Any, b: Any) -> Apply:
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        for ax, x, side in ((self.axes_a, a, "first"), (self.axes_b, b, "second")):
            if any(not 0 <= i < x.ndim for i in ax) or len(set(ax)) != len(ax):
                raise ValueError(f"tensordot: invalid axes {ax} for the {side} operand ({x.type})")
        for i, j in zip(self.axes_a, self.axes_b):
            da, db = a.type.shape[i], b.type.shape[j]
            if da is not None and db is not None and da != db:
                raise ValueError(
                    f"tensordot: shapes {a.type.shape} and {b.type.shape} do not match on the "
                    f"contracted axes {i} and {j} ({da} != {db})"
                )
        shape = tuple(s for i, s in enumerate(a.type.shape) if i not in self.axes_a) + tuple(
            s for j, s in enumerate(b.type.shape) if j not in self.axes_b
        )
        return Apply(self, [a, b], [TensorType(_result_dtype(a, b), shape)])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        a, b = inputs
        r = np.tensordot(a, b, axes=(list(self.axes_a), list(self.axes_b)))
        return [np.asarray(r, dtype=node.outputs[0].dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        (a, b), (gz,) = inputs, grads
        A, B = list(self.axes_a), list(self.axes_b)
        free_a = [i for i in range(a.ndim) if i not in A]
        free_b = [j for j in range(b.ndim) if j not in B]
        na = len(free_a)
        ga = gb = None
        if a.type.is_float:
            # Result axes: free_a, then b's contracted axes in ascending order.
            g = TensorDot(range(na, na + len(free_b)), free_b)(gz, b)
            src = free_a + [A[B.index(j)] for j in sorted(B)]
            ga = E.cast(transpose(g, [src.index(i) for i in range(a.ndim)]), a.dtype)
        if b.type.is_float:
            # Result axes: a's contracted axes in ascending order, then free_b.
            g = TensorDot(free_a, range(na))(a, gz)
            src = [B[A.index(i)] for i in sorted(A)] + free_b
            gb = E.cast(transpose(g, [src.index(j) for j in range(b.ndim)]), b.dtype)
        return [ga, gb]



def tensordot(a: Any, b: Any, axes: int | Sequence[Any] = 2) -> Variable:
    """``numpy.tensordot``: ``axes=n`` contracts the last n axes of ``a`` with the first n
    of ``b``; ``axes=[[i...], [j...]]`` pairs the listed axes (negative allowed)."""
    a, b = as_tensor_variable(a), as_tensor_variable(b)
    if isinstance(axes, int | np.integer):
        n = int(axes)
        if n < 0 or n > a.ndim or n > b.ndim:
            raise ValueError(f"tensordot: axes={n} is invalid for {a.ndim}-d and {b.ndim}-d operands")
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        try:
            ia, ib = axes
        except (TypeError, ValueError):
            raise ValueError(f"tensordot: axes must be an int or a pair of axis lists, got {axes!r}") \
                from None
        axes_a = [ia] if isinstance(ia, int | np.integer) else list(ia)
        axes_b = [ib] if isinstance(ib, int | np.integer) else list(ib)
        if len(axes_a) != len(axes_b):
            raise ValueError(f"tensordot: axes {axes_a} and {axes_b} differ in length")
    for ax, x in ((axes_a, a), (axes_b, b)):
        for i in ax:
            if not -x.ndim <= i < x.ndim:
                raise ValueError(f"tensordot: axis {i} is out of bounds for a {x.ndim}-d operand")
    axes_a = [int(i) % a.ndim for i in axes_a]
    axes_b = [int(j) % b.ndim for j in axes_b]
    return TensorDot(axes_a, axes_b)(a, b)


for _name in ("dot", "matmul", "outer", "tensordot"):
    register(_name, "linalg", True)
del _name
