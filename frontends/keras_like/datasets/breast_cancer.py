"""Wisconsin breast cancer (569 tumours, 30 features; 0 = malignant, 1 = benign), from
scikit-learn's wheel."""

from __future__ import annotations

from frontends.keras_like.datasets._sklearn import Split, bunch, split

CLASS_NAMES = ["malignant", "benign"]


def feature_names() -> list[str]:
    return [str(n) for n in bunch("load_breast_cancer").feature_names]


def load_data(test_split: float = 0.2, seed: int = 113) -> Split:
    """``(x_train, y_train), (x_test, y_test)``: float64 features (n, 30), int labels 0/1."""
    return split("load_breast_cancer", test_split, seed)
