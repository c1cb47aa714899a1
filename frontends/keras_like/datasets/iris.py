"""Fisher's Iris (150 flowers, 4 measurements in cm, 3 species), from scikit-learn's wheel."""

from __future__ import annotations

from frontends.keras_like.datasets._sklearn import Split, split

CLASS_NAMES = ["setosa", "versicolor", "virginica"]
FEATURE_NAMES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def load_data(test_split: float = 0.2, seed: int = 113) -> Split:
    """``(x_train, y_train), (x_test, y_test)``: float64 features (n, 4), int labels 0-2."""
    return split("load_iris", test_split, seed)
