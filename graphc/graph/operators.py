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
    # NumPy arrays and scalars on the left defer to our reflected operators instead of
    # building object arrays of variables.
    __array_ufunc__ = None

    # arithmetic
    def __add__(self, o): return _T().add(self, o)
    def __radd__(self, o): return _T().add(o, self)
    def __sub__(self, o): return _T().sub(self, o)
    def __rsub__(self, o): return _T().sub(o, self)
    def __mul__(self, o): return _T().mul(self, o)
    def __rmul__(self, o): return _T().mul(o, self)
    def __truediv__(self, o): return _T().true_div(self, o)
    def __rtruediv__(self, o): return _T().true_div(o, self)
    def __floordiv__(self, o): return _T().int_div(self, o)
    def __rfloordiv__(self, o): return _T().int_div(o, self)
    def __mod__(self, o): return _T().mod(self, o)
    def __rmod__(self, o): return _T().mod(o, self)
    def __pow__(self, o): return _T().pow(self, o)
    def __rpow__(self, o): return _T().pow(o, self)
    def __neg__(self): return _T().neg(self)
    def __abs__(self): return _T().abs(self)
    def __matmul__(self, o): return _T().matmul(self, o)
    def __rmatmul__(self, o): return _T().matmul(o, self)
    # comparisons (== and != stay identity-based so variables can be dict keys, as in Theano)
    def __lt__(self, o): return _T().lt(self, o)
    def __le__(self, o): return _T().le(self, o)
    def __gt__(self, o): return _T().gt(self, o)
    def __ge__(self, o): return _T().ge(self, o)
    # logical / bitwise
    def __and__(self, o): return _T().and_(self, o)
    def __rand__(self, o): return _T().and_(o, self)
    def __or__(self, o): return _T().or_(self, o)
    def __ror__(self, o): return _T().or_(o, self)
    def __xor__(self, o): return _T().xor(self, o)
    def __rxor__(self, o): return _T().xor(o, self)
    def __invert__(self): return _T().invert(self)

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
    def __getitem__(self, idx): return _T().subtensor(self, idx)

    @property
    def T(self): return _T().transpose(self)

    @property
    def shape(self): return _T().shape(self)

    @property
    def size(self): return _T().prod(_T().shape(self))

    def reshape(self, shape, ndim=None): return _T().reshape(self, shape, ndim=ndim)
    def flatten(self, ndim=1): return _T().flatten(self, ndim)
    def dimshuffle(self, *pattern): return _T().dimshuffle(self, *pattern)
    def transpose(self, *axes): return _T().transpose(self, *axes)
    def astype(self, dtype): return _T().cast(self, dtype)
    def dot(self, o): return _T().dot(self, o)
    def clip(self, lo, hi): return _T().clip(self, lo, hi)

    # reductions
    def sum(self, axis=None, keepdims=False, dtype=None): return _T().sum(self, axis, keepdims=keepdims, dtype=dtype)
    def prod(self, axis=None, keepdims=False): return _T().prod(self, axis, keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return _T().mean(self, axis, keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return _T().max(self, axis, keepdims=keepdims)
    def min(self, axis=None, keepdims=False): return _T().min(self, axis, keepdims=keepdims)
    def argmax(self, axis=None, keepdims=False): return _T().argmax(self, axis, keepdims=keepdims)
    def argmin(self, axis=None, keepdims=False): return _T().argmin(self, axis, keepdims=keepdims)
    def var(self, axis=None, keepdims=False, ddof=0): return _T().var(self, axis, keepdims=keepdims, ddof=ddof)
    def std(self, axis=None, keepdims=False, ddof=0): return _T().std(self, axis, keepdims=keepdims, ddof=ddof)
    def all(self, axis=None, keepdims=False): return _T().all(self, axis, keepdims=keepdims)
    def any(self, axis=None, keepdims=False): return _T().any(self, axis, keepdims=keepdims)

    # elementwise shortcuts Theano users reach for
    def exp(self): return _T().exp(self)
    def log(self): return _T().log(self)
    def sqrt(self): return _T().sqrt(self)
