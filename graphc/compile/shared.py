"""Shared variables: graph inputs whose value lives between function calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.graph.basic import Variable
from graphc.graph.type import TensorType


class Container:
    """Holds the current value of a shared variable (functions read and update it)."""

    __slots__ = ("value",)

    def __init__(self, value: np.ndarray) -> None:
        self.value = value


class SharedVariable(Variable):
    """A variable with a value that persists across calls, like Theano's ``shared``.

    ``default_update``, when set, is applied by every function using the variable
    unless that function's ``updates`` say otherwise (random streams use it).
    """

    def __init__(self, type: TensorType, value: np.ndarray, name: str | None = None) -> None:
        super().__init__(type, name=name)
        self.container = Container(value)
        self.default_update: Variable | None = None

    def get_value(self, borrow: bool = False) -> np.ndarray:
        """The current value; a copy unless ``borrow=True``."""
        value = self.container.value
        return value if borrow else value.copy()

    def set_value(self, value: Any, borrow: bool = False) -> None:
        """Replace the value; it must keep the dtype and fit the static shape."""
        arr = np.asarray(value)
        if arr.dtype.name != self.dtype or not arr.dtype.isnative:
            if not np.can_cast(arr.dtype, self.dtype, "same_kind"):
                raise TypeError(
                    f"shared variable {self.name or ''!r}: cannot set a {arr.dtype} value on a "
                    f"{self.dtype} variable"
                )
            arr = arr.astype(self.dtype)
        elif not borrow:
            arr = arr.copy()
        if arr.ndim != self.ndim or not self.type.is_shape_compatible(arr.shape):
            raise ValueError(
                f"shared variable {self.name or ''!r}: value of shape {arr.shape} does not fit "
                f"its type {self.type}"
            )
        self.container.value = arr

    def clone(self) -> SharedVariable:
        raise TypeError("shared variables are not cloned; they keep their identity in every graph")


def shared(
    value: Any,
    name: str | None = None,
    borrow: bool = False,
    shape: Sequence[int | None] | None = None,
    broadcastable: Sequence[bool] | None = None,
) -> SharedVariable:
    """A shared variable holding ``value`` (copied unless ``borrow=True``).

    Its static shape is unknown in every axis (so ``set_value`` may change it)
    unless ``shape`` or ``broadcastable`` says otherwise.
    """
    if isinstance(value, Variable):
        raise TypeError("graphc.shared takes a value (a NumPy array or number), not a graph variable")
    arr = np.array(value, copy=not borrow) if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype == object:
        raise TypeError(f"graphc.shared: cannot store a {type(value).__name__}")
    if not arr.dtype.isnative:  # a byte-swapped array: native code reads the native layout
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not isinstance(value, np.ndarray | np.generic) and arr.dtype.kind == "f":
        from graphc.config import config

        arr = arr.astype(config.floatX)
    if shape is None:
        if broadcastable is not None:
            shape = tuple(1 if b else None for b in broadcastable)
        else:
            shape = (None,) * arr.ndim
    var_type = TensorType(arr.dtype, shape)
    if not var_type.is_shape_compatible(arr.shape):
        raise ValueError(f"graphc.shared: value of shape {arr.shape} does not fit shape {shape}")
    return SharedVariable(var_type, arr, name=name)
