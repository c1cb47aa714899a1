"""Data sets without downloads: idx loading (small files written here), where Fashion-MNIST is
looked for, the error when it is missing, the real Debian files, and scikit-learn's small sets."""

import gzip
import os
import socket

import numpy as np
import pytest

from frontends.keras_like import datasets
from frontends.keras_like.datasets import fashion_mnist

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def _fake_set(folder, n_train=5, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(FILES, (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                              rng.integers(0, 10, n_train, dtype=np.uint8),
                              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                              rng.integers(0, 10, n_test, dtype=np.uint8))))
    for name, array in arrays.items():
        _write_idx(folder / name, array)
    return arrays


@pytest.fixture
def no_installed_data(monkeypatch, tmp_path):
    """Hide the system copy and the user's Keras copy: only what a test sets up is found."""
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(fashion_mnist, "DEFAULT_DIR", str(tmp_path / "no-system-copy"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the data set loaders must never open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_fashion_mnist_layout_from_a_folder(tmp_path):
    arrays = _fake_set(tmp_path)
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist.load_data(path=str(tmp_path))
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte.gz"])
    assert x_test.shape == (3, 28, 28) and y_train.dtype == np.uint8
    (m_train, _), _ = datasets.mnist.load_data(path=str(tmp_path))
    assert m_train.shape == (5, 28, 28)


def test_uncompressed_idx_files_are_read_too(tmp_path):
    arrays = _fake_set(tmp_path / "gz")
    (tmp_path / "raw").mkdir()
    for name in FILES:
        with gzip.open(tmp_path / "gz" / name) as src:
            (tmp_path / "raw" / name[:-3]).write_bytes(src.read())
    (x_train, _), _ = fashion_mnist.load_data(path=str(tmp_path / "raw"))
    np.testing.assert_array_equal(x_train, arrays[FILES[0]])


def test_search_order_env_then_debian_then_keras_folder(tmp_path, monkeypatch, no_installed_data,
                                                        no_network):
    keras_dir = tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist"
    keras_set = _fake_set(keras_dir, n_train=4, seed=1)
    (x, _), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(x, keras_set[FILES[0]])

    debian = tmp_path / "debian"
    _fake_set(debian, n_train=6, seed=2)
    monkeypatch.setattr(fashion_mnist, "DEFAULT_DIR", str(debian))
    assert fashion_mnist.load_data()[0][0].shape == (6, 28, 28)

    env = tmp_path / "env"
    _fake_set(env, n_train=7, seed=3)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(env))
    assert fashion_mnist.load_data()[0][0].shape == (7, 28, 28)
    assert fashion_mnist.find_dir() == str(env)


def test_a_folder_missing_a_file_is_skipped(tmp_path, monkeypatch, no_installed_data):
    partial = tmp_path / "partial"
    _fake_set(partial)
    (partial / FILES[3]).unlink()
    monkeypatch.setattr(fashion_mnist, "DEFAULT_DIR", str(partial))
    _fake_set(tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist", n_train=2)
    assert fashion_mnist.load_data()[0][0].shape == (2, 28, 28)


def test_missing_data_explains_how_to_get_it(tmp_path, no_installed_data, no_network):
    assert not fashion_mnist.is_available()
    with pytest.raises(FileNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "~/.keras/datasets/fashion-mnist/" in message
    assert "FASHION_MNIST_DIR" in message and "never downloads" in message
    assert "no-system-copy" in message  # says where it looked
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        datasets.fashion_mnist.load_data(path=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="not shipped"):
        datasets.mnist.load_data(path=os.fspath(tmp_path / "nowhere"))


def test_real_fashion_mnist_as_keras_returns_it(no_network):
    """The real data from Debian's package (.ci/run installs it). Deliberately not skipped: a
    machine without it fails here with the loader's instructions."""
    if not fashion_mnist.is_available():
        pytest.fail("Fashion-MNIST is missing on this machine (.ci/run installs it with apt-get; "
                    "did that step fail?)\n" + fashion_mnist.HOW_TO_GET_IT, pytrace=False)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    # balanced classes, as published: 6000 / 1000 per class
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert x_train.min() == 0 and x_train.max() == 255
    assert 60 < x_train.mean() < 90  # mean pixel ~72.9 (not noise, not transposed garbage)
    assert len(fashion_mnist.CLASS_NAMES) == 10
    # trousers are tall and narrow: their centre column is brighter than their side columns
    trousers = x_train[y_train == 1].astype(float).mean(0)
    assert trousers[:, 12:16].mean() > 2 * trousers[:, :4].mean()


@pytest.mark.parametrize("name, n, n_features, n_classes", [
    ("iris", 150, 4, 3), ("digits", 1797, 64, 10), ("breast_cancer", 569, 30, 2)])
def test_small_sklearn_sets_split_keras_style(name, n, n_features, n_classes, no_network):
    pytest.importorskip("sklearn")
    module = getattr(datasets, name)
    (x_train, y_train), (x_test, y_test) = module.load_data(test_split=0.2, seed=0)
    assert len(x_train) + len(x_test) == n
    assert x_train.shape[1:] == (n_features,) and x_test.shape[1:] == (n_features,)
    assert len(x_test) == pytest.approx(0.2 * n, abs=1)
    assert set(np.unique(y_test)) == set(range(n_classes))  # stratified: every class in both
    (again, _), _ = module.load_data(test_split=0.2, seed=0)
    np.testing.assert_array_equal(x_train, again)
    (all_x, _), (none_x, _) = module.load_data(test_split=0)
    assert len(all_x) == n and len(none_x) == 0
    with pytest.raises(ValueError, match="test_split"):
        module.load_data(test_split=1.5)
