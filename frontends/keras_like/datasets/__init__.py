"""Data sets that ship on the machine (no downloads): ``fashion_mnist``, ``mnist`` from idx files."""

from frontends.keras_like.datasets import fashion_mnist, mnist

__all__ = ["fashion_mnist", "mnist"]
