"""``model.summary()``: Keras' table of layers, output shapes and parameter counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _shape_text(shape: tuple | None) -> str:
    if shape is None:
        return "multiple"
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (
        ",)" if len(shape) == 1 else ")")


def _count(weights: list) -> int:
    return int(sum(np.prod(w.get_value(borrow=True).shape) for w in weights))


def _row(fields: list[str], positions: list[int]) -> str:
    # Keras' print_row: each field starts at the previous stop and is cut at its own.
    line = ""
    for i, (text, stop) in enumerate(zip(fields, positions)):
        if i > 0:
            line = line[:-1] + " "
        line = (line + text)[:stop]
        line += " " * (stop - len(line))
    return line


def print_summary(model: Any, line_length: int | None = None, positions: list[float] | None = None,
                  print_fn: Callable[[str], Any] | None = None) -> None:
    """Print (with ``print_fn``, default ``print``) the Keras 2 summary table of a Sequential model."""
    print_fn = print_fn or print
    line_length = line_length or 65
    positions = positions or [0.45, 0.85, 1.0]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    positions = [int(p) for p in positions]
    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(_row(["Layer (type)", "Output Shape", "Param #"], positions))
    print_fn("=" * line_length)
    for i, layer in enumerate(model.layers):
        shape = layer.output_shape if layer.built else None
        print_fn(_row([f"{layer.name} ({type(layer).__name__})", _shape_text(shape),
                       str(layer.count_params())], positions))
        print_fn("=" * line_length if i == len(model.layers) - 1 else "_" * line_length)
    if not model.layers:
        print_fn("=" * line_length)
    trainable = _count(_unique(model.trainable_weights))
    total = _count(_unique(model.weights))
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)


def _unique(weights: list) -> list:
    seen: set[int] = set()
    return [w for w in weights if not (id(w) in seen or seen.add(id(w)))]
