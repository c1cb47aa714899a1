"""Helpers shared by the keras_like tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import graphc
import graphc.tensor as T


def evaluate(fn: Callable, *arrays, dtype: str = "float64") -> np.ndarray:
    """Apply the symbolic ``fn`` to inputs with the static shapes of ``arrays`` and run it.

    Integer arrays stay integer; the others are given as ``dtype``.
    """
    values = [np.asarray(a) for a in arrays]
    values = [v if v.dtype.kind in "iu" else v.astype(dtype) for v in values]
    inputs = [T.tensor(v.dtype, shape=v.shape) for v in values]
    f = graphc.function(inputs, fn(*inputs))
    return np.asarray(f(*values))
