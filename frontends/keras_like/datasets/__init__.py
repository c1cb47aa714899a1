"""Data sets that are on the machine (nothing is downloaded): ``fashion_mnist`` and ``mnist`` from
idx files; ``iris``, ``digits`` and ``breast_cancer`` from scikit-learn's wheel."""

from frontends.keras_like.datasets import breast_cancer, digits, fashion_mnist, iris, mnist

__all__ = ["fashion_mnist", "mnist", "iris", "digits", "breast_cancer"]
