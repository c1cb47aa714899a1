"""Fashion-MNIST as Keras' ``datasets.fashion_mnist.load_data()`` returns it (uint8 images
28x28, labels 0-9), read from local idx files; nothing is ever downloaded.

Where the four files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``) are looked for, in order:
``path=`` when given, ``$FASHION_MNIST_DIR``, ``/usr/share/datasets/fashion-mnist`` (Debian's
``dataset-fashion-mnist`` package) and ``~/.keras/datasets/fashion-mnist`` (where Keras keeps
its download).
"""

from __future__ import annotations

import os

import numpy as np

from frontends.keras_like.datasets.idx import STEMS, has_all_files, load_from

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
KERAS_DIR = os.path.join("~", ".keras", "datasets", "fashion-mnist")

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

HOW_TO_GET_IT = (
    "Fashion-MNIST is not installed. graphc never downloads data; get the four idx files with ONE of:\n"
    "  - Debian/Ubuntu: sudo apt-get update && sudo apt-get install dataset-fashion-mnist\n"
    "    (installs them in /usr/share/datasets/fashion-mnist/)\n"
    "  - copy train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and\n"
    "    t10k-labels-idx1-ubyte.gz into ~/.keras/datasets/fashion-mnist/ (where Keras keeps them)\n"
    "  - point FASHION_MNIST_DIR (or load_data(path=...)) at a folder holding them."
)


def candidate_dirs(path: str | None = None) -> list[str]:
    """The folders ``load_data`` tries, in order."""
    if path is not None:
        return [os.path.expanduser(path)]
    dirs = [os.environ.get("FASHION_MNIST_DIR", ""), DEFAULT_DIR, os.path.expanduser(KERAS_DIR)]
    return [d for d in dirs if d]


def find_dir(path: str | None = None) -> str | None:
    """The first candidate folder holding all four files, or None."""
    for directory in candidate_dirs(path):
        if has_all_files(directory):
            return directory
    return None


def is_available(path: str | None = None) -> bool:
    return find_dir(path) is not None


def load_data(path: str | None = None) -> tuple[tuple[np.ndarray, np.ndarray],
                                                 tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)``: uint8 arrays of shapes (60000, 28, 28),
    (60000,), (10000, 28, 28), (10000,); labels index :data:`CLASS_NAMES`.

    Raises ``FileNotFoundError`` saying how to install the data when no folder has it.
    """
    directory = find_dir(path)
    if directory is None:
        looked = ", ".join(candidate_dirs(path))
        raise FileNotFoundError(f"{HOW_TO_GET_IT}\nLooked in: {looked} (need files matching "
                                f"{', '.join('*' + s + '*' for s in STEMS)}).")
    return load_from(directory)
