"""Preparing NumPy data for the compiled functions: dtypes, target shapes, weights, batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from frontends.keras_like import backend as K


def standardize_x(x: Any, input_shape: tuple | None) -> np.ndarray:
    """``x`` as a floatX array, checked against the model's input shape (batch axis excluded)."""
    if isinstance(x, list | tuple) and len(x) == 1 and isinstance(x[0], np.ndarray):
        x = x[0]  # Keras accepts a one-element list for a single-input model
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"model input must be numeric, got an array of dtype {arr.dtype}")
    arr = arr.astype(K.floatx(), copy=False)
    if input_shape is not None:
        expected = tuple(input_shape[1:])
        if arr.ndim != len(expected) + 1 or any(
                e is not None and e != a for e, a in zip(expected, arr.shape[1:])):
            raise ValueError(
                f"model input: expected arrays of shape (n, {', '.join(map(str, expected))}) "
                f"(input_shape={expected}), got shape {arr.shape}")
    return arr


def standardize_y(y: Any, output_shape: tuple, sparse: bool) -> np.ndarray:
    """Targets shaped for the target variable: integer labels for sparse losses, else floatX
    arrays with the output's rank (a ``(n,)`` vector becomes ``(n, 1)`` for one output unit)."""
    arr = np.asarray(y)
    out_rank = len(output_shape)
    if sparse:
        if arr.ndim == out_rank and arr.shape[-1] == 1:
            arr = arr.reshape(arr.shape[:-1])
        if arr.ndim != out_rank - 1:
            raise ValueError(f"sparse targets: expected integer labels of shape (n,) for outputs "
                             f"{output_shape}, got shape {arr.shape}")
        return arr.astype("int64")
    if arr.ndim == out_rank - 1 and output_shape[-1] == 1:
        arr = arr.reshape((*arr.shape, 1))
    if arr.ndim != out_rank:
        raise ValueError(f"targets: expected shape (n, {', '.join(map(str, output_shape[1:]))}), got "
                         f"{arr.shape}")
    last = output_shape[-1]
    if last is not None and arr.shape[-1] != last:
        hint = ""
        if arr.shape[-1] == 1 and last > 1:
            hint = (" (for integer class labels use loss='sparse_categorical_crossentropy' or "
                    "convert them with utils.to_categorical)")
        raise ValueError(f"targets have shape {arr.shape} but the model outputs {output_shape}{hint}")
    return arr.astype(K.floatx())


def sample_weights(y: np.ndarray, sample_weight: Any, class_weight: Any, sparse: bool) -> np.ndarray:
    """Per-sample weights: ``sample_weight`` times the weight of each sample's class."""
    n = len(y)
    weights = np.ones(n, dtype=K.floatx())
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=K.floatx())
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        weights = weights * sw
    if class_weight:
        if sparse or y.ndim == 1:
            classes = y.astype("int64").reshape(n)
        elif y.shape[-1] == 1:
            classes = (y.reshape(n) > 0.5).astype("int64")
        else:
            classes = np.argmax(y.reshape(n, -1), axis=-1)
        weights = weights * np.array([class_weight.get(int(c), 1.0) for c in classes],
                                     dtype=K.floatx())
    return weights


def split_validation(arrays: list[np.ndarray], fraction: float) -> tuple[list, list]:
    """Keras' ``validation_split``: the *last* fraction of the samples, taken before shuffling."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
    n = len(arrays[0])
    split_at = int(n * (1.0 - fraction))
    if split_at == 0 or split_at == n:
        raise ValueError(f"validation_split={fraction} leaves an empty training or validation set "
                         f"for {n} samples")
    return [a[:split_at] for a in arrays], [a[split_at:] for a in arrays]


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def check_lengths(*arrays: np.ndarray) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"inputs, targets and weights must have the same number of samples, got "
                         f"{sorted(len(a) for a in arrays)}")
    return lengths.pop()
