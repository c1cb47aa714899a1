"""Reductions: sum prod mean max min argmax argmin var std all any.

One :class:`Reduce` op covers the associative reductions (add, mul, max, min,
and, or); it always drops the reduced axes and ``keepdims`` is a DimShuffle
after it, so rewrites and backends see a single form. ``mean``, ``var`` and
``std`` are built from ``sum`` and elementwise ops, so their gradients come for
free. Axes follow NumPy: ``None`` (all), an int or a tuple, negative allowed.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Apply, Variable
from graphc.graph.op import Op
from graphc.graph.type import TensorType, normalize_dtype
from graphc.ops import elemwise as E
from graphc.ops.dimshuffle import DimShuffle
from graphc.ops.registry import register
from graphc.tensor.basic import as_tensor_variable, constant

__all__ = [
    "Reduce", "Argmax", "Argmin", "sum", "prod", "mean", "max", "min", "argmax", "argmin",
    "var", "std", "all", "any",
]

Axis = int | Sequence[int] | None
# This module defines sum/max/min/all/any; internal code uses the builtins by these names.
_py_any = builtins.any


def normalize_axis(axis: Any, ndim: int, what: str = "reduction") -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative ints, or a ValueError naming the problem."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, Variable):
        data = getattr(axis, "data", None)
        if data is None:
            raise TypeError(f"{what}: axis must be known when the graph is built, got {axis!r}")
        axis = data.tolist()
    if isinstance(axis, np.ndarray):
        axis = axis.tolist()
    items = [axis] if isinstance(axis, int | np.integer) else list(axis)
    out = []
    for a in items:
        if not isinstance(a, int | np.integer) or isinstance(a, bool):
            raise TypeError(f"{what}: axis entries must be ints, got {a!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{what}: axis {int(a)} is out of bounds for a {ndim}-d tensor")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: repeated axis in {tuple(items)}")
    return tuple(sorted(out))


def _kept_shape(shape: tuple, axis: tuple[int, ...]) -> tuple:
    return tuple(s for i, s in enumerate(shape) if i not in axis)


def _expand(r: Variable, axis: tuple[int, ...], ndim: int) -> Variable:
    """``r`` (reduced over ``axis`` of an ``ndim``-d tensor) with those axes back as length 1."""
    if not axis:
        return r
    order: list[int | str] = []
    k = 0
    for i in range(ndim):
        if i in axis:
            order.append("x")
        else:
            order.append(k)
            k += 1
    return DimShuffle(r.ndim, order)(r)


def _default_sum_dtype(dtype: str) -> str:
    # NumPy widens small ints and bool to the platform integer when summing.
    return np.sum(np.zeros(1, dtype=dtype)).dtype.name


_IMPLS = {
    "add": np.sum, "mul": np.prod, "max": np.max, "min": np.min, "and": np.all, "or": np.any,
}


class Reduce(Op):
    """Reduce ``x`` over ``axis`` (sorted, non-negative) with ``kind``; output dtype ``dtype``."""

    __props__ = ("kind", "axis", "dtype")

    def __init__(self, kind: str, axis: tuple[int, ...], dtype: str) -> None:
        if kind not in _IMPLS:
            raise ValueError(f"Reduce: unknown kind {kind!r}")
        self.kind, self.axis, self.dtype = kind, tuple(axis), normalize_dtype(dtype)

    def __str__(self) -> str:
        return f"Reduce{{{self.kind}, axis={self.axis}}}"

    def make_node(self, x: Any) -> Apply:
        x = as_tensor_variable(x)
        if _py_any(a >= x.ndim for a in self.axis):
            raise ValueError(f"{self}: axis out of bounds for a {x.ndim}-d input")
        if self.kind in ("max", "min"):
            for a in self.axis:
                if x.type.shape[a] == 0:
                    raise ValueError(f"{self.kind}: zero-size axis {a} has no identity ({x.type})")
        return Apply(self, [x], [TensorType(self.dtype, _kept_shape(x.type.shape, self.axis))])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        impl = _IMPLS[self.kind]
        if self.kind in ("add", "mul"):
            r = impl(x, axis=self.axis, dtype=self.dtype)
        else:
            r = impl(x, axis=self.axis)
        return [np.asarray(r, dtype=self.dtype)]

    def L_op(self, inputs: Sequence[Variable], outputs: Sequence[Variable],
             grads: Sequence[Variable]) -> list[Any]:
        (x,), (z,), (gz,) = inputs, outputs, grads
        if not x.type.is_float:
            return [None]
        if self.kind in ("and", "or"):
            return [E.zeros_like(x)]
        gz_x = _expand(gz, self.axis, x.ndim)
        if self.kind == "add":
            g = E.second(x, gz_x)
        elif self.kind in ("max", "min"):
            # Every position equal to the extreme gets the gradient (ties share it, as Theano).
            g = E.mul(gz_x, E.eq(x, _expand(z, self.axis, x.ndim)))
        else:
            g = E.mul(gz_x, _prod_grad_factor(x, z, self.axis))
        return [E.cast(g, x.dtype)]


def _prod_grad_factor(x: Variable, z: Variable, axis: tuple[int, ...]) -> Variable:
    """d prod / d x, correct also where x has zeros (Theano's ProdWithoutZeros idea).

    With no zero in a slice it is prod / x; with exactly one zero, only that
    element gets the product of the others; with two or more, everything is 0.
    """
    is_zero = E.eq(x, 0)
    n_zeros = _expand(Reduce("add", axis, "int64")(is_zero), axis, x.ndim)
    prod_nonzero = _expand(Reduce("mul", axis, x.dtype)(E.switch(is_zero, E.ones_like(x), x)),
                           axis, x.ndim)
    safe_x = E.switch(is_zero, E.ones_like(x), x)
    at_zero = E.switch(E.eq(n_zeros, 1), prod_nonzero, E.zeros_like(prod_nonzero))
    return E.switch(is_zero, at_zero, E.true_div(_expand(z, axis, x.ndim), safe_x))


class ReducedSize(Op):
    """The number of elements reduced over ``axis`` (for ``mean``/``var`` of unknown shape)."""

    __props__ = ("axis", "dtype")

    def __init__(self, axis: tuple[int, ...], dtype: str) -> None:
        self.axis, self.dtype = tuple(axis), normalize_dtype(dtype)

    def make_node(self, x: Variable) -> Apply:
        return Apply(self, [x], [TensorType(self.dtype, ())])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        n = math.prod(inputs[0].shape[a] for a in self.axis)
        return [np.asarray(n, dtype=self.dtype)]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        return [None]  # depends on the shape only, not on the values


def _reduced_size(x: Variable, axis: tuple[int, ...], dtype: str) -> Variable:
    dims = [x.type.shape[a] for a in axis]
    if None not in dims:
        return constant(np.asarray(math.prod(dims), dtype=dtype))
    return ReducedSize(axis, dtype)(x)


def _keep(r: Variable, axis: tuple[int, ...], ndim: int, keepdims: bool) -> Variable:
    return _expand(r, axis, ndim) if keepdims else r


def _resolve_dtype(dtype: Any) -> str | None:
    if dtype is None:
        return None
    return normalize_dtype(config.floatX if dtype == "floatX" else dtype)


def _reduce(kind: str, x: Any, axis: Axis, keepdims: bool, dtype: str) -> Variable:
    x = as_tensor_variable(x)
    ax = normalize_axis(axis, x.ndim, kind)
    return _keep(Reduce(kind, ax, dtype)(x), ax, x.ndim, keepdims)


def sum(x: Any, axis: Axis = None, dtype: Any = None, keepdims: bool = False,
        acc_dtype: Any = None) -> Variable:
    """Sum over ``axis``; bool and small ints widen to int64 as in NumPy unless ``dtype`` says."""
    x = as_tensor_variable(x)
    out = _resolve_dtype(dtype) or _default_sum_dtype(x.dtype)
    return _reduce("add", x, axis, keepdims, out)


def prod(x: Any, axis: Axis = None, dtype: Any = None, keepdims: bool = False,
         acc_dtype: Any = None) -> Variable:
    """Product over ``axis`` (its gradient handles zeros in the input)."""
    x = as_tensor_variable(x)
    out = _resolve_dtype(dtype) or _default_sum_dtype(x.dtype)
    return _reduce("mul", x, axis, keepdims, out)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``; the gradient goes to every position attaining it."""
    x = as_tensor_variable(x)
    return _reduce("max", x, axis, keepdims, x.dtype)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``; the gradient goes to every position attaining it."""
    x = as_tensor_variable(x)
    return _reduce("min", x, axis, keepdims, x.dtype)


def all(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """True where every element over ``axis`` is nonzero (bool result)."""
    return _reduce("and", x, axis, keepdims, "bool")


def any(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """True where some element over ``axis`` is nonzero (bool result)."""
    return _reduce("or", x, axis, keepdims, "bool")


def _mean_dtype(x: Variable, dtype: Any) -> str:
    return _resolve_dtype(dtype) or (x.dtype if x.type.is_float else "float64")


def mean(x: Any, axis: Axis = None, dtype: Any = None, keepdims: bool = False,
         acc_dtype: Any = None) -> Variable:
    """Arithmetic mean over ``axis``; integer inputs give float64, as NumPy."""
    x = as_tensor_variable(x)
    ax = normalize_axis(axis, x.ndim, "mean")
    out = _mean_dtype(x, dtype)
    # float16 accumulates in float32 as NumPy does; the result is cast back.
    acc = "float32" if out == "float16" else out
    s = Reduce("add", ax, acc)(x)
    m = E.cast(E.true_div(s, _reduced_size(x, ax, acc)), out)
    return _keep(m, ax, x.ndim, keepdims)


def var(x: Any, axis: Axis = None, ddof: int = 0, keepdims: bool = False,
        corrected: bool = False) -> Variable:
    """Variance over ``axis`` with ``ddof`` (``corrected=True`` means ddof=1, as Theano)."""
    x = as_tensor_variable(x)
    ax = normalize_axis(axis, x.ndim, "var")
    if corrected:
        ddof = 1
    out = _mean_dtype(x, None)
    xf = E.cast(x, out)
    centered = E.sub(xf, mean(xf, ax, keepdims=True))
    s = Reduce("add", ax, out)(E.sqr(centered))
    n = _reduced_size(x, ax, out)
    v = E.true_div(s, E.sub(n, ddof) if ddof else n)
    return _keep(v, ax, x.ndim, keepdims)


def std(x: Any, axis: Axis = None, ddof: int = 0, keepdims: bool = False,
        corrected: bool = False) -> Variable:
    """Standard deviation: ``sqrt(var(x, axis, ddof))``."""
    return E.sqrt(var(x, axis, ddof=ddof, keepdims=keepdims, corrected=corrected))


# ---------------------------------------------------------------------------------------
class _ArgReduce(Op):
    """Index of the extreme over ``axis`` (several axes count as one flattened axis)."""

    __props__ = ("axis",)
    _impl: Any = None

    def __init__(self, axis: tuple[int, ...]) -> None:
        self.axis = tuple(axis)

    def make_node(self, x: Any) -> Apply:
        x = as_tensor_variable(x)
        name = type(self).__name__.lower()
        if _py_any(a >= x.ndim for a in self.axis):
            raise ValueError(f"{name}: axis out of bounds for a {x.ndim}-d input")
        for a in self.axis:
            if x.type.shape[a] == 0:
                raise ValueError(f"{name}: zero-size axis {a} has no extreme ({x.type})")
        return Apply(self, [x], [TensorType("int64", _kept_shape(x.type.shape, self.axis))])

    def perform(self, node: Apply, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        (x,) = inputs
        kept = [i for i in range(x.ndim) if i not in self.axis]
        y = np.transpose(x, kept + list(self.axis))
        # The reduced size explicitly: -1 cannot be inferred when a kept axis is empty.
        y = y.reshape([x.shape[i] for i in kept] + [int(np.prod([x.shape[i] for i in self.axis]))])
        return [np.asarray(type(self)._impl(y, axis=-1), dtype="int64")]

    def grad(self, inputs: Sequence[Variable], grads: Sequence[Variable]) -> list[Any]:
        (x,) = inputs
        # Piecewise constant: zero where defined, as Theano.
        return [E.zeros_like(x) if x.type.is_float else None]


class Argmax(_ArgReduce):
    _impl = staticmethod(np.argmax)


class Argmin(_ArgReduce):
    _impl = staticmethod(np.argmin)


def argmax(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Index (int64) of the maximum over ``axis``; a tuple of axes indexes them flattened."""
    x = as_tensor_variable(x)
    ax = normalize_axis(axis, x.ndim, "argmax")
    return _keep(Argmax(ax)(x), ax, x.ndim, keepdims)


def argmin(x: Any, axis: Axis = None, keepdims: bool = False) -> Variable:
    """Index (int64) of the minimum over ``axis``; a tuple of axes indexes them flattened."""
    x = as_tensor_variable(x)
    ax = normalize_axis(axis, x.ndim, "argmin")
    return _keep(Argmin(ax)(x), ax, x.ndim, keepdims)


for _name in ("sum", "prod", "mean", "max", "min", "var", "std"):
    register(_name, "reduce", True)
for _name in ("argmax", "argmin", "all", "any"):
    register(_name, "reduce", False)
del _name
