"""The legacy HDF5 layout of Keras 2 (``model.save('m.h5')``, ``save_weights('w.h5')``).

A model file: root attributes ``model_config`` (JSON), ``training_config`` (JSON),
``keras_version``, ``backend``; a group ``model_weights`` with attribute ``layer_names`` and, per
layer, a group with attribute ``weight_names`` whose entries are datasets (``dense_1/kernel:0``);
a group ``optimizer_weights`` likewise. A weights file has the ``model_weights`` content at the
root. Weights are matched to layers in order (layers without weights skipped), or by layer name.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

from frontends.keras_like.saving import keras_compile
from frontends.keras_like.saving.h5 import read_str, read_str_list, require_h5py, write_str_list
from frontends.keras_like.saving.keras_config import (
    major_version,
    model_from_keras_config,
    model_to_keras_config,
)

# graphc writes the Keras 2 layout; "2" tells readers (graphc included) that names such as
# hard_sigmoid carry their Keras 2 meaning.
KERAS_VERSION = "2"
BACKEND = "graphc"


def _weight_names(layer: Any) -> list[str]:
    return [f"{layer.name}/{w.name.rsplit('/', 1)[-1]}:0" for w in layer.weights]


def write_layer_weights(group: Any, model: Any) -> None:
    write_str_list(group, "layer_names", [layer.name for layer in model.layers])
    group.attrs["backend"] = BACKEND.encode("utf8")
    group.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
    for layer in model.layers:
        sub = group.create_group(layer.name)
        names = _weight_names(layer)
        write_str_list(sub, "weight_names", names)
        for name, w in zip(names, layer.weights):
            sub.create_dataset(name, data=w.get_value())


def write_model(model: Any, path: str, include_optimizer: bool = True) -> None:
    h5py = require_h5py("saving to .h5")
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = BACKEND.encode("utf8")
        f.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
        f.attrs["model_config"] = json.dumps(model_to_keras_config(model, style=2)).encode("utf8")
        write_layer_weights(f.create_group("model_weights"), model)
        training = keras_compile.compile_config(model, style=2) if include_optimizer else None
        if training is None:
            return
        f.attrs["training_config"] = json.dumps(training).encode("utf8")
        variables = keras_compile.optimizer_variables(model)
        group = f.create_group("optimizer_weights")
        write_str_list(group, "weight_names", [name for name, _ in variables])
        for name, var in variables:
            group.create_dataset(name, data=var.get_value())


def write_weights(model: Any, path: str) -> None:
    h5py = require_h5py("saving weights to .h5")
    with h5py.File(path, "w") as f:
        write_layer_weights(f, model)


def _read_layers(group: Any) -> list[tuple[str, list[np.ndarray]]]:
    out = []
    for name in read_str_list(group, "layer_names"):
        sub = group[name]
        out.append((name, [np.asarray(sub[w][()]) for w in read_str_list(sub, "weight_names")]))
    return out


def load_layer_weights(model: Any, group: Any, label: str, by_name: bool = False,
                       skip_mismatch: bool = False) -> None:
    saved = _read_layers(group)
    if by_name:
        saved_by_name = dict(saved)
        for layer in model.layers:
            if layer.name in saved_by_name and layer.weights:
                _set(layer, saved_by_name[layer.name], label, skip_mismatch)
        return
    saved = [(n, ws) for n, ws in saved if ws]
    ours = [layer for layer in model.layers if layer.weights]
    if len(saved) != len(ours):
        raise ValueError(f"{label}: the file has weights for {len(saved)} layers "
                         f"({[n for n, _ in saved]}), the model has {len(ours)} layers with weights "
                         f"({[layer.name for layer in ours]}); use by_name=True to match by name")
    for layer, (_, values) in zip(ours, saved):
        _set(layer, values, label, skip_mismatch)


def _set(layer: Any, values: list, label: str, skip_mismatch: bool) -> None:
    try:
        layer.set_weights(values)
    except ValueError as exc:
        if not skip_mismatch:
            raise ValueError(f"{label}: {exc}") from exc
        warnings.warn(f"{label}: skipping layer {layer.name!r}: {exc}", stacklevel=4)


def _optimizer_arrays(f: Any) -> tuple[list[str], list[np.ndarray]]:
    group = f["optimizer_weights"]
    names = read_str_list(group, "weight_names")
    return names, [np.asarray(group[n][()]) for n in names]


def read_model(path: str, custom_objects: dict | None = None, compile: bool = True) -> Any:
    h5py = require_h5py("loading .h5 models")
    with h5py.File(path, "r") as f:
        config = read_str(f.attrs, "model_config")
        if config is None:
            raise ValueError(f"{path}: no model_config attribute: this HDF5 file holds weights "
                             f"only; build the model and call load_weights")
        version = read_str(f.attrs, "keras_version", "1")
        model = model_from_keras_config(json.loads(config), major_version(version), custom_objects)
        load_layer_weights(model, f["model_weights"] if "model_weights" in f else f, path)
        training = read_str(f.attrs, "training_config")
        if not (compile and training):
            return model
        keras_compile.compile_from_config(model, json.loads(training))
        if "optimizer_weights" in f:
            names, values = _optimizer_arrays(f)
            # Keras 3 (and graphc) lay the state out as iteration, learning_rate, slots; Keras 2
            # grouped slots differently per optimizer and version, so its state is not mapped.
            if len(names) >= 2 and names[1].endswith("learning_rate"):
                keras_compile.restore_optimizer(model, values, path)
            else:
                warnings.warn(f"{path}: the optimizer state of Keras {version} files is not "
                              f"restored; the optimizer starts fresh", stacklevel=3)
    return model


def read_weights(model: Any, path: str, by_name: bool = False, skip_mismatch: bool = False) -> None:
    h5py = require_h5py("loading .h5 weights")
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs and not any(
                k.startswith("layer_names") for k in group.attrs):
            raise ValueError(f"{path}: not a Keras 2 weights file (no layer_names attribute)")
        load_layer_weights(model, group, path, by_name, skip_mismatch)
