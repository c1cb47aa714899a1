"""The small real data sets scikit-learn's wheel ships (no download), split the Keras way."""

from __future__ import annotations

from typing import Any

import numpy as np

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def bunch(loader_name: str) -> Any:
    """The scikit-learn Bunch of ``sklearn.datasets.<loader_name>()``."""
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError(
            "this data set comes with scikit-learn: pip install scikit-learn "
            "(or the project's test extra: pip install -e '.[test]')") from exc
    return getattr(datasets, loader_name)()


def split(loader_name: str, test_split: float, seed: int) -> Split:
    """``(x_train, y_train), (x_test, y_test)``, stratified by class so that small sets keep
    every class in both parts; ``test_split=0`` puts everything in the training part."""
    data = bunch(loader_name)
    x, y = np.asarray(data.data), np.asarray(data.target)
    if not 0 <= test_split < 1:
        raise ValueError(f"test_split must be in [0, 1), got {test_split}")
    if test_split == 0:
        return (x, y), (x[:0], y[:0])
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_split, random_state=seed, stratify=y)
    return (x_train, y_train), (x_test, y_test)
