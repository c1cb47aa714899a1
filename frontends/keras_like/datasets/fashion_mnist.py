"""Fashion-MNIST as Keras' ``datasets.fashion_mnist.load_data()`` returns it (uint8 images
28x28, labels 0-9), read from the files Debian's ``dataset-fashion-mnist`` package installs."""

from __future__ import annotations

import os

import numpy as np

from frontends.keras_like.datasets.idx import load_from

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def load_data(path: str | None = None) -> tuple[tuple[np.ndarray, np.ndarray],
                                                 tuple[np.ndarray, np.ndarray]]:
    directory = path or os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {directory}; install it with "
            f"'apt-get install dataset-fashion-mnist' or pass path= (a folder with the four idx "
            f"files). Nothing is downloaded.")
    return load_from(directory)
