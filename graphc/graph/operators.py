"""Python operators on symbolic variables (``x + y``, ``x[i]``, ``x.sum()``...).

The methods forward to :mod:`graphc.tensor`, imported lazily because the tensor
API is built on top of the IR defined next to this file.
"""

from __future__ import annotations

from typing import Any


def _T() -> Any:
    import graphc.tensor as T

    return T


class TensorOperators:
    # arithmetic
    def __add__(self, o): return _T().add(self, o)  # noqa: E704
    def __radd__(self, o): return _T().add(o, self)  # noqa: E704
    def __sub__(self, o): return _T().sub(self, o)  # noqa: E704
    def __rsub__(self, o): return _T().sub(o, self)  # noqa: E704
    def __mul__(self, o): return _T().mul(self, o)  # noqa: E704
    def __rmul__(self, o): return _T().mul(o, self)  # noqa: E704
    def __truediv__(self, o): return _T().true_div(self, o)  # noqa: E704
    def __rtruediv__(self, o): return _T().true_div(o, self)  # noqa: E704
    def __floordiv__(self, o): return _T().int_div(self, o)  # noqa: E704
    def __rfloordiv__(self, o): return _T().int_div(o, self)  # noqa: E704
    def __mod__(self, o): return _T().mod(self, o)  # noqa: E704
    def __rmod__(self, o): return _T().mod(o, self)  # noqa: E704
    def __pow__(self, o): return _T().pow(self, o)  # noqa: E704
    def __rpow__(self, o): return _T().pow(o, self)  # noqa: E704
    def __neg__(self): return _T().neg(self)  # noqa: E704
    def __abs__(self): return _T().abs(self)  # noqa: E704
    def __matmul__(self, o): return _T().matmul(self, o)  # noqa: E704
    def __rmatmul__(self, o): return _T().matmul(o, self)  # noqa: E704
    # comparisons (== and != stay identity-based so variables can be dict keys, as in Theano)
    def __lt__(self, o): return _T().lt(self, o)  # noqa: E704
    def __le__(self, o): return _T().le(self, o)  # noqa: E704
    def __gt__(self, o): return _T().gt(self, o)  # noqa: E704
    def __ge__(self, o): return _T().ge(self, o)  # noqa: E704
    # logical / bitwise
    def __and__(self, o): return _T().and_(self, o)  # noqa: E704
    def __rand__(self, o): return _T().and_(o, self)  # noqa: E704
    def __or__(self, o): return _T().or_(self, o)  # noqa: E704
    def __ror__(self, o): return _T().or_(o, self)  # noqa: E704
    def __xor__(self, o): return _T().xor(self, o)  # noqa: E704
    def __rxor__(self, o): return _T().xor(o, self)  # noqa: E704
    def __invert__(self): return _T().invert(self)  # noqa: E704

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "a symbolic variable has no truth value; use graphc.ifelse or T.switch for "
            "conditions on symbolic values"
        )

    def __iter__(self):
        raise TypeError("a symbolic variable is not iterable; index it explicitly (x[i])")

    def __len__(self) -> int:
        raise TypeError("len() of a symbolic variable is unknown; use x.shape[0]")

    # indexing and shape
    def __getitem__(self, idx): return _T().subtensor(self, idx)  # noqa: E704

    @property
    def T(self): return _T().transpose(self)  # noqa: E704

    @property
    def shape(self): return _T().shape(self)  # noqa: E704

    @property
    def size(self): return _T().prod(_T().shape(self))  # noqa: E704

    def reshape(self, shape, ndim=None): return _T().reshape(self, shape, ndim=ndim)  # noqa: E704
    def flatten(self, ndim=1): return _T().flatten(self, ndim)  # noqa: E704
    def dimshuffle(self, *pattern): return _T().dimshuffle(self, *pattern)  # noqa: E704
    def transpose(self, *axes): return _T().transpose(self, *axes)  # noqa: E704
    def astype(self, dtype): return _T().cast(self, dtype)  # noqa: E704
    def dot(self, o): return _T().dot(self, o)  # noqa: E704
    def clip(self, lo, hi): return _T().clip(self, lo, hi)  # noqa: E704

    # reductions
    def sum(self, axis=None, keepdims=False, dtype=None): return _T().sum(self, axis, keepdims=keepdims, dtype=dtype)  # noqa: E501,E704
    def prod(self, axis=None, keepdims=False): return _T().prod(self, axis, keepdims=keepdims)  # noqa: E704
    def mean(self, axis=None, keepdims=False): return _T().mean(self, axis, keepdims=keepdims)  # noqa: E704
    def max(self, axis=None, keepdims=False): return _T().max(self, axis, keepdims=keepdims)  # noqa: E704
    def min(self, axis=None, keepdims=False): return _T().min(self, axis, keepdims=keepdims)  # noqa: E704
    def argmax(self, axis=None, keepdims=False): return _T().argmax(self, axis, keepdims=keepdims)  # noqa: E704,E501
    def argmin(self, axis=None, keepdims=False): return _T().argmin(self, axis, keepdims=keepdims)  # noqa: E704,E501
    def var(self, axis=None, keepdims=False, ddof=0): return _T().var(self, axis, keepdims=keepdims, ddof=ddof)  # noqa: E501,E704
    def std(self, axis=None, keepdims=False, ddof=0): return _T().std(self, axis, keepdims=keepdims, ddof=ddof)  # noqa: E501,E704
    def all(self, axis=None, keepdims=False): return _T().all(self, axis, keepdims=keepdims)  # noqa: E704
    def any(self, axis=None, keepdims=False): return _T().any(self, axis, keepdims=keepdims)  # noqa: E704

    # elementwise shortcuts Theano users reach for
    def exp(self): return _T().exp(self)  # noqa: E704
    def log(self): return _T().log(self)  # noqa: E704
    def sqrt(self): return _T().sqrt(self)  # noqa: E704
