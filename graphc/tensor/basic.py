"""Symbolic variable constructors and conversion of Python values to graph constants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.config import config
from graphc.graph.basic import Constant, Variable
from graphc.graph.type import TensorType, normalize_dtype

__all__ = [
    "tensor", "scalar", "vector", "row", "col", "matrix", "tensor3", "tensor4", "tensor5",
    "as_tensor_variable", "as_tensor", "constant", "TensorType", "TensorVariable",
    "TensorConstant", "iscalar", "ivector", "imatrix", "itensor3", "itensor4",
    "lscalar", "lvector", "lmatrix", "ltensor3", "ltensor4",
    "fscalar", "fvector", "fmatrix", "ftensor3", "ftensor4",
    "dscalar", "dvector", "dmatrix", "dtensor3", "dtensor4",
    "bscalar", "bvector", "bmatrix", "btensor3", "btensor4",
    "cscalar_dtype_for",
]

TensorVariable = Variable
TensorConstant = Constant


def tensor(
    dtype: object = None,
    shape: Sequence[int | None] | None = None,
    name: str | None = None,
    ndim: int | None = None,
) -> Variable:
    """A symbolic input: ``T.tensor('float32', shape=(None, 3), name='x')``."""
    if isinstance(dtype, str) and dtype not in np.sctypeDict and name is None and shape is None:
        # T.tensor('x', ...) with the name first is a common slip; keep the Theano order.
        raise TypeError(f"T.tensor: {dtype!r} is not a dtype; call T.tensor(dtype, shape, name)")
    if shape is None:
        shape = (None,) * (ndim or 0)
    return Variable(TensorType(dtype or config.floatX, shape), name=name)


def _maker(ndim: int, dtype: str | None, broadcast: tuple[int, ...] = ()):
    def make(name: str | None = None, dtype: object = dtype, shape=None) -> Variable:
        if shape is None:
            shape = tuple(1 if i in broadcast else None for i in range(ndim))
        if len(shape) != ndim:
            raise ValueError(f"a {ndim}-d variable needs a shape of length {ndim}, got {shape}")
        return Variable(TensorType(dtype or config.floatX, shape), name=name)

    return make


scalar, vector, matrix = _maker(0, None), _maker(1, None), _maker(2, None)
tensor3, tensor4, tensor5 = _maker(3, None), _maker(4, None), _maker(5, None)
row, col = _maker(2, None, (0,)), _maker(2, None, (1,))
# Dtype-prefixed constructors, as in Theano: i=int32 l=int64 f=float32 d=float64 b=int8.
iscalar, ivector, imatrix = _maker(0, "int32"), _maker(1, "int32"), _maker(2, "int32")
itensor3, itensor4 = _maker(3, "int32"), _maker(4, "int32")
lscalar, lvector, lmatrix = _maker(0, "int64"), _maker(1, "int64"), _maker(2, "int64")
ltensor3, ltensor4 = _maker(3, "int64"), _maker(4, "int64")
fscalar, fvector, fmatrix = _maker(0, "float32"), _maker(1, "float32"), _maker(2, "float32")
ftensor3, ftensor4 = _maker(3, "float32"), _maker(4, "float32")
dscalar, dvector, dmatrix = _maker(0, "float64"), _maker(1, "float64"), _maker(2, "float64")
dtensor3, dtensor4 = _maker(3, "float64"), _maker(4, "float64")
bscalar, bvector, bmatrix = _maker(0, "int8"), _maker(1, "int8"), _maker(2, "int8")
btensor3, btensor4 = _maker(3, "int8"), _maker(4, "int8")


def cscalar_dtype_for(value: bool | int | float, partners: Sequence[str]) -> str:
    """The dtype a Python scalar takes beside tensors of dtypes ``partners``.

    Python scalars are *weak*, as in Theano and NumPy 2: ``float32 * 0.1`` stays
    float32 and ``int32 + 1`` stays int32. A Python float next to integers
    becomes floatX.
    """
    if not partners:
        return _default_dtype(value)
    result = np.result_type(*partners, value).name
    if isinstance(value, int) and not isinstance(value, bool) and np.dtype(result).kind in "iu":
        result = _widen_for_int(result, value)
    if isinstance(value, float) and np.dtype(result).kind != "f":
        return config.floatX
    if isinstance(value, float) and all(np.dtype(p).kind in "biu" for p in partners):
        return config.floatX
    return result


def _widen_for_int(dtype: str, value: int) -> str:
    """``dtype`` widened until it holds ``value``: NumPy 2 raises OverflowError for
    ``int8_array + 300``; Theano (and NumPy 1) gave int16, which is what users expect."""
    for candidate in (dtype, "int8", "int16", "int32", "int64", "uint64"):
        wide = np.result_type(dtype, candidate)
        if wide.kind in "iu" and np.iinfo(wide).min <= value <= np.iinfo(wide).max:
            return wide.name
    raise OverflowError(f"the Python integer {value} does not fit any integer dtype")


def _default_dtype(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int):
        return "int64" if not -(2**31) <= value < 2**31 else "int32"
    if isinstance(value, float):
        return config.floatX
    return normalize_dtype(np.asarray(value).dtype)


def constant(value: Any, dtype: object = None, name: str | None = None) -> Constant:
    """A graph constant. Python floats (and lists of them) become floatX."""
    if dtype is None:
        arr = np.asarray(value)
        if not isinstance(value, np.ndarray | np.generic):
            if arr.dtype.kind == "f":
                arr = arr.astype(config.floatX)
            elif arr.dtype.kind in "iu" and arr.ndim == 0:
                arr = arr.astype(_default_dtype(int(arr)))
    else:
        arr = np.asarray(value, dtype=normalize_dtype(dtype))
    if arr.dtype == object:
        raise TypeError(f"cannot make a graph constant from {type(value).__name__}")
    return Constant(TensorType(arr.dtype, arr.shape), arr, name=name)


def as_tensor_variable(x: Any, dtype: object = None, name: str | None = None) -> Variable:
    """Return ``x`` if it is a graph variable, else a constant holding it."""
    if isinstance(x, Variable):
        if dtype is not None and x.dtype != normalize_dtype(dtype):
            from graphc.ops.elemwise import cast

            return cast(x, dtype)
        return x
    if isinstance(x, list | tuple) and any(isinstance(e, Variable) for e in x):
        from graphc.ops.shape import stack

        return stack([as_tensor_variable(e, dtype) for e in x])
    return constant(x, dtype=dtype, name=name)


as_tensor = as_tensor_variable
