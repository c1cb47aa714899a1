"""MNIST in the same layout, from a folder holding its four idx files (nothing is downloaded)."""

from __future__ import annotations

import os

import numpy as np

from frontends.keras_like.datasets.idx import load_from


def load_data(path: str | None = None) -> tuple[tuple[np.ndarray, np.ndarray],
                                                 tuple[np.ndarray, np.ndarray]]:
    directory = path or os.environ.get("MNIST_DIR")
    if not directory or not os.path.isdir(directory):
        raise FileNotFoundError(
            "MNIST is not shipped on this machine: pass path= (or set MNIST_DIR) to a folder with "
            "train-images/train-labels/t10k-images/t10k-labels idx files, or use "
            "datasets.fashion_mnist (Debian package dataset-fashion-mnist).")
    return load_from(directory)
