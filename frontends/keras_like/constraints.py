"""Weight constraints: projections applied to a weight right after each optimizer update.

They are part of the compiled training step: the update of a constrained weight
is ``constraint(new_value)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like._compat import deserialize_config, lookup
from graphc.graph.basic import Variable


def _norms(w: Variable, axis: Any) -> Variable:
    return T.sqrt(T.sum(T.sqr(w), axis=axis, keepdims=True))


class Constraint:
    def __call__(self, w: Variable) -> Variable:
        return w

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        return cls(**config)


class MaxNorm(Constraint):
    """Rescale each column (``axis=0``: the incoming weights of a unit) to norm <= ``max_value``."""

    def __init__(self, max_value: float = 2.0, axis: Any = 0, **kwargs: Any) -> None:
        self.max_value = kwargs.pop("m", max_value)
        self.axis = axis

    def __call__(self, w: Variable) -> Variable:
        norms = _norms(w, self.axis)
        desired = T.clip(norms, 0.0, self.max_value)
        return w * (desired / (K.epsilon() + norms))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights become zero."""

    def __call__(self, w: Variable) -> Variable:
        return w * T.cast(T.ge(w, 0.0), w.dtype)


class UnitNorm(Constraint):
    def __init__(self, axis: Any = 0) -> None:
        self.axis = axis

    def __call__(self, w: Variable) -> Variable:
        return w / (K.epsilon() + _norms(w, self.axis))

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Norms pulled into ``[min_value, max_value]``; ``rate`` < 1 moves only part of the way."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: Any = 0) -> None:
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: Variable) -> Variable:
        norms = _norms(w, self.axis)
        desired = self.rate * T.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (K.epsilon() + norms))

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


# Functional and Keras 1 names.
max_norm = maxnorm = MaxNorm
non_neg = nonneg = NonNeg
unit_norm = unitnorm = UnitNorm
min_max_norm = MinMaxNorm

_CLASSES = {c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm, Constraint)}
_NAMES: dict[str, Any] = {
    "max_norm": MaxNorm, "maxnorm": MaxNorm, "non_neg": NonNeg, "nonneg": NonNeg,
    "unit_norm": UnitNorm, "unitnorm": UnitNorm, "min_max_norm": MinMaxNorm,
}


def get(identifier: Any) -> Callable[[Variable], Variable] | None:
    if identifier is None:
        return None
    identifier = deserialize_config(identifier, _CLASSES, "constraint")
    found = lookup(identifier, _NAMES, "constraint")
    if isinstance(found, type):
        return found()
    if not callable(found):
        raise ValueError(f"could not interpret constraint {identifier!r}")
    return found


def serialize(c: Any) -> Any:
    if isinstance(c, Constraint):
        return {"class_name": type(c).__name__, "config": c.get_config()}
    return getattr(c, "__name__", repr(c))
