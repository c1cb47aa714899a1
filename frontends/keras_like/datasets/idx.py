"""Reading the idx format of (Fashion-)MNIST, gzipped or not, and finding the four files."""

from __future__ import annotations

import glob
import gzip
import os

import numpy as np

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an idx file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=_DTYPES[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, found {array.size} values")
    return array.reshape(shape).astype(np.dtype(_DTYPES[data[2]]).newbyteorder("="))


STEMS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


def has_all_files(directory: str) -> bool:
    """Whether ``directory`` holds a file for each of the four parts."""
    return os.path.isdir(directory) and all(
        glob.glob(os.path.join(glob.escape(directory), f"*{stem}*")) for stem in STEMS)


def _find(directory: str, stem: str) -> str:
    matches = sorted(glob.glob(os.path.join(glob.escape(directory), f"*{stem}*")))
    if not matches:
        raise FileNotFoundError(f"no file matching *{stem}* in {directory}")
    return matches[0]


def load_from(directory: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((x_train, y_train), (x_test, y_test))`` from the four idx files in ``directory``."""
    parts = [read_idx(_find(directory, stem)) for stem in STEMS]
    return (parts[0], parts[1]), (parts[2], parts[3])
