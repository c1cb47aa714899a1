"""Weight and activity regularizers: penalties added to the training loss.

``L1L2(l1, l2)(w) = l1 * sum(|w|) + l2 * sum(w**2)``. Keras 1 spellings
(``l1l2``, ``activity_l2``, ``WeightRegularizer``...) build the same objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like._compat import deserialize_config, lookup
from graphc.graph.basic import Variable


class Regularizer:
    """Base class: ``reg(weight) -> scalar penalty``."""

    def __call__(self, x: Variable) -> Any:
        return 0.0

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x: Variable) -> Any:
        penalty: Any = 0.0
        if self.l1:
            penalty = penalty + self.l1 * T.sum(T.abs(x))
        if self.l2:
            penalty = penalty + self.l2 * T.sum(T.sqr(x))
        return penalty

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"L1L2(l1={self.l1}, l2={self.l2})"


class L1(L1L2):
    def __init__(self, l1: float = 0.01, **kwargs: Any) -> None:
        super().__init__(l1=kwargs.pop("l", l1))

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2: float = 0.01, **kwargs: Any) -> None:
        super().__init__(l2=kwargs.pop("l", l2))

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """``factor * mean |W^T W - I|`` over the off-diagonal, rows or columns normalized (Keras 3)."""

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor, self.mode = factor, mode

    def __call__(self, x: Variable) -> Any:
        w = x if self.mode == "rows" else x.T
        w = K.l2_normalize(w, axis=-1)
        product = T.dot(w, w.T)
        n = w.type.shape[0]
        off = product * T.constant((1 - np.eye(n)).astype(x.dtype))
        return self.factor * T.sum(T.abs(off)) / (n * (n - 1))

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


def l1(l: float = 0.01) -> L1L2:  # noqa: E741
    return L1(l)


def l2(l: float = 0.01) -> L1L2:  # noqa: E741
    return L2(l)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    return L1L2(l1=l1, l2=l2)


# Keras 1 names: the activity_* forms are the same penalties applied to outputs.
l1l2 = l1_l2
activity_l1, activity_l2, activity_l1l2 = l1, l2, l1_l2
WeightRegularizer = ActivityRegularizer = L1L2

_CLASSES = {"L1L2": L1L2, "L1": L1, "L2": L2, "OrthogonalRegularizer": OrthogonalRegularizer,
            "Regularizer": Regularizer}
_NAMES: dict[str, Any] = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2,
                          "orthogonal_regularizer": OrthogonalRegularizer}


def get(identifier: Any) -> Callable[[Variable], Any] | None:
    if identifier is None:
        return None
    identifier = deserialize_config(identifier, _CLASSES, "regularizer")
    found = lookup(identifier, _NAMES, "regularizer")
    if isinstance(found, type):
        return found()
    if not callable(found):
        raise ValueError(f"could not interpret regularizer {identifier!r}")
    return found


def serialize(reg: Any) -> Any:
    if isinstance(reg, Regularizer):
        return {"class_name": type(reg).__name__, "config": reg.get_config()}
    return getattr(reg, "__name__", repr(reg))
