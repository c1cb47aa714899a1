"""Handwritten digits (1797 images of 8x8 pixels, values 0-16, labels 0-9), from scikit-learn's wheel."""

from __future__ import annotations

from frontends.keras_like.datasets._sklearn import Split, split


def load_data(test_split: float = 0.2, seed: int = 113) -> Split:
    """``(x_train, y_train), (x_test, y_test)``: float64 features (n, 64), int labels 0-9."""
    return split("load_digits", test_split, seed)
