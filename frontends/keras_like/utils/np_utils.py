"""NumPy helpers: ``to_categorical`` and ``normalize`` (Keras 1's ``keras.utils.np_utils``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_categorical(y: Any, num_classes: int | None = None, dtype: str = "float32",
                   **kwargs: Any) -> np.ndarray:
    """One-hot rows for integer class labels: ``to_categorical([0, 2], 3)`` ->
    ``[[1, 0, 0], [0, 0, 1]]``. A trailing axis of length 1 is dropped first, as in Keras;
    ``num_classes`` (Keras 1: ``nb_classes``) defaults to ``max(y) + 1``."""
    if "nb_classes" in kwargs:
        num_classes = kwargs.pop("nb_classes")
    if kwargs:
        raise TypeError(f"to_categorical: unexpected arguments {sorted(kwargs)}")
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("to_categorical expects integer class labels, got fractional values")
    y = y.astype("int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.ravel()
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: class labels must be >= 0, got {y.min()}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and y.max() >= num_classes:
        raise ValueError(f"to_categorical: label {y.max()} does not fit num_classes={num_classes}")
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out.reshape((*shape, num_classes))


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """Scale ``x`` to unit ``order``-norm along ``axis`` (zero vectors stay zero)."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)



def probas_to_classes(y_pred: np.ndarray) -> np.ndarray:
    """Keras 1 helper: argmax for several columns, ``> 0.5`` for one."""
    if y_pred.ndim > 1 and y_pred.shape[-1] > 1:
        return np.argmax(y_pred, axis=-1)
    return (np.asarray(y_pred) > 0.5).astype("int32").reshape(len(y_pred))
