"""The Keras 3 formats: ``.keras`` (a zip of ``metadata.json``, ``config.json`` and
``model.weights.h5``) and ``.weights.h5``.

Inside the weights file, as Keras 3 lays it out: ``layers/<name>/vars/<i>`` for each layer,
``<name>`` being the snake-cased class name made unique in order (``dense``, ``dense_1``,
``batch_normalization``...; Keras deliberately does not use the layer's own name), an attribute
``name`` on each ``vars`` group, ``vars`` for the model itself, and ``optimizer/vars/<i>`` for
the optimizer state (see :mod:`.keras_compile`).
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from typing import Any

import numpy as np

from frontends.keras_like.saving import keras_compile
from frontends.keras_like.saving.h5 import require_h5py
from frontends.keras_like.saving.keras_config import (
    keras_snake_case,
    major_version,
    model_from_keras_config,
    model_to_keras_config,
)

CONFIG_NAME = "config.json"
METADATA_NAME = "metadata.json"
WEIGHTS_NAME = "model.weights.h5"
# The format level graphc writes; Keras reads "keras_version" only for information.
KERAS_VERSION = "3.0.0"


def layer_paths(model: Any) -> list[tuple[str, Any]]:
    """``('layers/dense', layer)`` pairs named as Keras 3 names them in weight files."""
    used: dict[str, int] = {}
    out = []
    for layer in model.layers:
        base = keras_snake_case(type(layer).__name__)
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        out.append((f"layers/{name}", layer))
    return out


def metadata() -> dict:
    from importlib import metadata as importlib_metadata

    try:
        graphc_version = importlib_metadata.version("graphc")
    except importlib_metadata.PackageNotFoundError:
        graphc_version = "unknown"
    return {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "graphc_version": graphc_version}


# ---------------------------------------------------------------------------------------
# model.weights.h5 / *.weights.h5
def state_arrays(model: Any, include_optimizer: bool) -> dict[str, tuple[np.ndarray, ...]]:
    """``{group path: arrays}`` for the layers (and optimizer) in Keras 3's layout."""
    groups: dict[str, tuple[np.ndarray, ...]] = {}
    for path, layer in layer_paths(model):
        groups[path] = tuple(w.get_value() for w in layer.weights)
    if include_optimizer and getattr(model, "_compiled", False):
        groups["optimizer"] = tuple(v.get_value() for _, v in keras_compile.optimizer_variables(model))
    return groups


def write_weights_h5(model: Any, target: Any, include_optimizer: bool = True) -> None:
    h5py = require_h5py("writing Keras weight files")
    names = dict(layer_paths(model))
    with h5py.File(target, "w") as f:
        for path, arrays in state_arrays(model, include_optimizer).items():
            group = f.create_group(f"{path}/vars")
            group.attrs["name"] = (names[path].name if path in names
                                   else keras_snake_case(type(model.optimizer).__name__))
            for i, value in enumerate(arrays):
                group.create_dataset(str(i), data=value)
        f.create_group("vars").attrs["name"] = model.name


def read_weights_h5(model: Any, source: Any, label: str) -> list[np.ndarray] | None:
    """Set the layer weights from a Keras 3 weights file; returns its optimizer arrays."""
    h5py = require_h5py("reading Keras weight files")
    with h5py.File(source, "r") as f:
        if "layers" not in f:
            raise ValueError(f"{label}: not a Keras 3 weights file (no 'layers' group)")
        expected = dict(layer_paths(model))
        present = {f"layers/{name}" for name in f["layers"]
                   if len(f[f"layers/{name}"].get("vars", {})) > 0}
        extra = sorted(present - {p for p, layer in expected.items() if layer.weights})
        if extra:
            raise ValueError(f"{label}: the file has weights for {extra}, which this model does not "
                             f"have (its layers: {[p for p in expected]})")
        values: dict[str, list[np.ndarray]] = {}
        for path, layer in expected.items():
            group = f.get(f"{path}/vars")
            arrays = [] if group is None else [group[str(i)][()] for i in range(len(group))]
            if len(arrays) != len(layer.weights):
                raise ValueError(f"{label}: layer {layer.name!r} ({path}) has {len(layer.weights)} "
                                 f"weights, the file has {len(arrays)}")
            values[path] = arrays
        optimizer = None
        if "optimizer/vars" in f:
            group = f["optimizer/vars"]
            optimizer = [group[str(i)][()] for i in range(len(group))]
    for path, layer in expected.items():
        if layer.weights:
            try:
                layer.set_weights(values[path])
            except ValueError as exc:
                raise ValueError(f"{label}: {exc}") from exc
    return optimizer


# ---------------------------------------------------------------------------------------
# .keras
def write_keras(model: Any, target: Any, include_optimizer: bool = True) -> None:
    """Write the ``.keras`` zip to ``target`` (a path or a binary file object)."""
    from frontends.keras_like.saving.keras_compile import compile_config

    spec = model_to_keras_config(model, style=3)
    compiled = compile_config(model, style=3) if include_optimizer else None
    if compiled is not None:
        spec["compile_config"] = compiled
    weights = io.BytesIO()
    write_weights_h5(model, weights, include_optimizer=compiled is not None)
    with zipfile.ZipFile(target, "w") as zf:  # stored, not deflated: as Keras writes it
        zf.writestr(METADATA_NAME, json.dumps(metadata()))
        zf.writestr(CONFIG_NAME, json.dumps(spec))
        zf.writestr(WEIGHTS_NAME, weights.getvalue())


def _open_weights(zf: zipfile.ZipFile, label: str) -> io.BytesIO:
    names = zf.namelist()
    if WEIGHTS_NAME not in names:
        other = [n for n in names if n.startswith("model.weights")]
        raise ValueError(f"{label}: no {WEIGHTS_NAME} in the archive"
                         + (f" (it has {other}: sharded or NumPy weights are not supported)"
                            if other else ""))
    return io.BytesIO(zf.read(WEIGHTS_NAME))


def read_keras(source: Any, label: str, custom_objects: dict | None = None,
               compile: bool = True) -> Any:
    with zipfile.ZipFile(source, "r") as zf:
        spec = json.loads(zf.read(CONFIG_NAME))
        meta = json.loads(zf.read(METADATA_NAME)) if METADATA_NAME in zf.namelist() else {}
        weights = _open_weights(zf, label)
    model = model_from_keras_config(spec, major_version(meta.get("keras_version", "3")),
                                    custom_objects)
    optimizer = read_weights_h5(model, weights, label)
    compiled = spec.get("compile_config")
    if compile and compiled:
        keras_compile.compile_from_config(model, compiled)
        if optimizer:
            keras_compile.restore_optimizer(model, optimizer, label)
    return model


def read_keras_weights_only(model: Any, source: Any, label: str) -> list[np.ndarray] | None:
    with zipfile.ZipFile(source, "r") as zf:
        weights = _open_weights(zf, label)
    return read_weights_h5(model, weights, label)
