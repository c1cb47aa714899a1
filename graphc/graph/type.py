"""TensorType: what a graph variable holds (a dtype and a static shape).

A static shape entry is an int when known at build time, ``None`` otherwise.
A dimension of static size 1 is *broadcastable*, as in Theano.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
DISCRETE_DTYPES = (*INT_DTYPES, "bool")
ALL_DTYPES = (*FLOAT_DTYPES, *DISCRETE_DTYPES)

Shape = tuple[int | None, ...]


def normalize_dtype(dtype: object) -> str:
    name = np.dtype(dtype).name
    if name not in ALL_DTYPES:
        raise TypeError(f"unsupported dtype {name!r}; graphc supports {ALL_DTYPES}")
    return name


class TensorType:
    """The type of a tensor variable: dtype plus static shape."""

    __slots__ = ("dtype", "shape")

    def __init__(self, dtype: object, shape: Sequence[int | None]) -> None:
        self.dtype = normalize_dtype(dtype)
        checked = []
        for s in shape:
            if s is not None:
                if not isinstance(s, int | np.integer) or s < 0:
                    raise ValueError(f"static shape entries must be None or ints >= 0, got {s!r}")
                s = int(s)
            checked.append(s)
        self.shape: Shape = tuple(checked)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def broadcastable(self) -> tuple[bool, ...]:
        return tuple(s == 1 for s in self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_discrete(self) -> bool:
        return self.dtype in DISCRETE_DTYPES

    def clone(self, dtype: object = None, shape: Sequence[int | None] | None = None) -> TensorType:
        return TensorType(self.dtype if dtype is None else dtype, self.shape if shape is None else shape)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TensorType) and self.dtype == other.dtype and self.shape == other.shape

    def __hash__(self) -> int:
        return hash((self.dtype, self.shape))

    def __repr__(self) -> str:
        dims = ", ".join("?" if s is None else str(s) for s in self.shape)
        return f"TensorType({self.dtype}, ({dims}{',' if self.ndim == 1 else ''}))"

    def is_shape_compatible(self, shape: Sequence[int]) -> bool:
        return len(shape) == self.ndim and all(
            s is None or s == d for s, d in zip(self.shape, shape)
        )

    def filter(self, value: object, name: str, allow_downcast: bool | None = None) -> np.ndarray:
        """Convert a user-supplied value into an array of this type, or raise.

        ``allow_downcast``: ``True`` accepts any cast, ``False`` only safe
        ones; ``None`` (Theano's default) also lets Python floats become floatX-
        sized floats, so ``f(0.1)`` works for a float32 scalar.
        """
        is_array = isinstance(value, np.ndarray | np.generic)
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"input {name!r}: cannot convert {type(value).__name__} to a tensor")
        if arr.ndim != self.ndim:
            raise TypeError(
                f"input {name!r}: expected a {self.ndim}-d array ({self}), got {arr.ndim}-d "
                f"with shape {arr.shape}"
            )
        if arr.dtype.name != self.dtype:
            safe = np.can_cast(arr.dtype, self.dtype, "safe")
            python_value = not is_array
            if allow_downcast or safe:
                pass
            elif allow_downcast is None and python_value and self.is_float:
                # Python floats and lists of them are float64 by accident, not by intent.
                pass
            elif python_value and arr.dtype.kind in "iub" and np.array_equal(
                arr.astype(self.dtype).astype(arr.dtype), arr
            ):
                # Python ints that fit exactly (e.g. labels passed as a list).
                pass
            else:
                raise TypeError(
                    f"input {name!r}: got dtype {arr.dtype.name}, expected {self.dtype}; "
                    f"converting would lose precision. Cast the value yourself or pass "
                    f"allow_input_downcast=True to graphc.function."
                )
            arr = arr.astype(self.dtype)
        elif not arr.dtype.isnative:
            # A byte-swapped array (e.g. '>f8' read from a file) has this dtype's name but
            # not its layout: kernels and outputs use the native one.
            arr = arr.astype(self.dtype)
        if not self.is_shape_compatible(arr.shape):
            raise ValueError(
                f"input {name!r}: shape {arr.shape} does not match the static shape "
                f"{self.shape} of its type"
            )
        return arr
