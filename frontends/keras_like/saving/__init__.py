"""Saving and loading models: the Keras file formats, real Keras files, safe writes.

======================  ==================================  ===============================
path given              ``model.save``                      ``model.save_weights``
======================  ==================================  ===============================
``*.keras``             Keras 3 zip: config.json,           (Keras 3 refuses; so do we)
                        metadata.json, model.weights.h5
``*.weights.h5``        -                                   Keras 3 weights (+ optimizer)
``*.h5`` / ``*.hdf5``   Keras 2 HDF5 (model_config,         Keras 2 HDF5 weights
                        model_weights, optimizer_weights)   (layer_names/weight_names)
anything else           graphc's ``.npz`` archive (same     the same archive, weights and
                        content as .keras; no h5py needed)  optimizer state only
======================  ==================================  ===============================

Loading looks at the file's content, not its name: HDF5 (Keras 2 model or weights, Keras 3
weights), a ``.keras`` zip, or a graphc archive. Files written by real Keras 3 (``.keras``) and
Keras 2 (``.h5``) load for the layers and options graphc implements; anything else raises
:class:`UnsupportedKerasConfig` naming the layer and option. HDF5 needs h5py
(``pip install graphc[h5]``).

Every write goes to a temporary file in the destination's directory that is then renamed over
it (:mod:`.atomic`), so a crash mid-save never destroys the previous file.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

from frontends.keras_like.saving import keras_compile, keras_v3, legacy_h5, native
from frontends.keras_like.saving.atomic import atomic_path
from frontends.keras_like.saving.h5 import HDF5_SIGNATURE, require_h5py
from frontends.keras_like.saving.keras_config import (
    UnsupportedKerasConfig,
    major_version,
    model_from_keras_config,
    model_to_keras_config,
)

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_to_json",
           "model_from_json", "UnsupportedKerasConfig"]


def _kind_from_suffix(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".keras"):
        return "keras"
    if lower.endswith(".weights.h5"):
        return "weights_h5"
    if lower.endswith((".h5", ".hdf5")):
        return "h5"
    return "native"


def _kind_from_content(path: str) -> str:
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory (a TensorFlow SavedModel?): graphc reads .keras, "
                         f".h5 and its own archives")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_SIGNATURE:
        return "hdf5"
    if head[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
        if keras_v3.CONFIG_NAME in names:
            return "keras"
        if any(n.endswith(".npy") for n in names):
            return "native"
    raise ValueError(f"{path}: not a model file graphc knows (.keras zip, HDF5 or graphc archive)")


def save_model(model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True) -> None:
    """Write architecture, weights, compile settings and optimizer state (see module doc)."""
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    kind = _kind_from_suffix(path)
    if kind in ("keras", "weights_h5", "h5"):
        require_h5py(f"saving {path}")
    with atomic_path(path) as tmp:
        if kind == "keras":
            keras_v3.write_keras(model, tmp, include_optimizer)
        elif kind in ("h5", "weights_h5"):
            legacy_h5.write_model(model, tmp, include_optimizer)
        else:
            with open(tmp, "wb") as f:
                native.write(model, f, weights_only=False, include_optimizer=include_optimizer)


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write the weights (and, as Keras 3 does, the optimizer state in ``.weights.h5``)."""
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{path} exists and overwrite=False")
    kind = _kind_from_suffix(path)
    if kind == "keras":
        raise ValueError(f"{path}: save_weights writes weights only; use a .weights.h5 name, or "
                         f"model.save() for a .keras file")
    if kind != "native":
        require_h5py(f"saving {path}")
    with atomic_path(path) as tmp:
        if kind == "weights_h5":
            keras_v3.write_weights_h5(model, tmp)
        elif kind == "h5":
            legacy_h5.write_weights(model, tmp)
        else:
            with open(tmp, "wb") as f:
                native.write(model, f, weights_only=True)


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    """A model from a ``.keras``, legacy ``.h5`` (Keras 2 or graphc) or graphc archive file."""
    path = os.fspath(filepath)
    kind = _kind_from_content(path)
    if kind == "keras":
        require_h5py(f"loading {path}")
        return keras_v3.read_keras(path, path, custom_objects, compile)
    if kind == "hdf5":
        h5py = require_h5py(f"loading {path}")
        with h5py.File(path, "r") as f:
            has_config = "model_config" in f.attrs
        if not has_config:
            raise ValueError(f"{path} holds weights only; build the model and use load_weights")
        return legacy_h5.read_model(path, custom_objects, compile)
    return native.read_model(path, custom_objects, compile)


def load_weights(model: Any, filepath: Any, by_name: bool = False, skip_mismatch: bool = False) -> None:
    """Weights from any of the formats (a ``.keras`` file's weights too); the optimizer state is
    restored as well when the file has it and the model is compiled with the same optimizer."""
    path = os.fspath(filepath)
    if not model.built:
        raise ValueError("load_weights: the model has no weights yet; give it an input shape "
                         "(input_dim=..., build(...)) first")
    kind = _kind_from_content(path)
    optimizer = None
    if kind == "keras":
        optimizer = keras_v3.read_keras_weights_only(model, path, path)
    elif kind == "hdf5":
        h5py = require_h5py(f"loading {path}")
        with h5py.File(path, "r") as f:
            keras3 = "layers" in f and "layer_names" not in f.attrs
        if keras3:
            optimizer = keras_v3.read_weights_h5(model, path, path)
        else:
            legacy_h5.read_weights(model, path, by_name, skip_mismatch)
    else:
        optimizer = native.read_weights(model, path)
    if optimizer:
        keras_compile.restore_optimizer(model, optimizer, path)


def model_to_json(model: Any, **kwargs: Any) -> str:
    """The architecture as Keras 3's ``to_json`` writes it."""
    return json.dumps(model_to_keras_config(model, style=3), **kwargs)


def model_from_json(text: str, custom_objects: dict | None = None) -> Any:
    """A model from ``to_json`` text of graphc, Keras 3 or Keras 2 (all layers supported)."""
    spec = json.loads(text)
    major = 3 if isinstance(spec, dict) and "module" in spec else 2
    return model_from_keras_config(spec, major, custom_objects)
