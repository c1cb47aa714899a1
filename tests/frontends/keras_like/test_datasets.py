"""idx loading for fashion_mnist/mnist (on small files written here)."""

import gzip
import os

import numpy as np
import pytest

from frontends.keras_like import datasets


def _write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_fashion_mnist_layout_from_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 5, dtype=np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3, dtype=np.uint8)}
    for name, array in arrays.items():
        _write_idx(tmp_path / name, array)
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist.load_data(path=str(tmp_path))
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert x_test.shape == (3, 28, 28) and y_train.dtype == np.uint8
    (m_train, _), _ = datasets.mnist.load_data(path=str(tmp_path))
    assert m_train.shape == (5, 28, 28)


def test_missing_data_explains_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        datasets.fashion_mnist.load_data(path=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="not shipped"):
        datasets.mnist.load_data(path=os.fspath(tmp_path / "nowhere"))
