"""graphc's own archive: the ``.keras`` content in one NumPy ``.npz`` file (no h5py needed).

Used for paths without a ``.keras``/``.h5``/``.hdf5`` suffix (``ModelCheckpoint('best-model')``
followed by ``load_weights('best-model')`` keeps working). Entries: ``__config__``,
``__compile__`` and ``__metadata__`` (JSON strings, as in a ``.keras`` file), and the arrays
under their Keras 3 weight-file paths (``layers/dense/vars/0``, ``optimizer/vars/0``...). Files
of the earlier interim format (``weight_0000``...) are still read.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from frontends.keras_like.saving import keras_compile, keras_v3
from frontends.keras_like.saving.keras_config import major_version, model_from_keras_config

FORMAT = "graphc-npz-1"


def write(model: Any, target: Any, weights_only: bool, include_optimizer: bool = True) -> None:
    arrays: dict[str, np.ndarray] = {"__format__": np.array(FORMAT),
                                     "__metadata__": np.array(json.dumps(keras_v3.metadata()))}
    compiled = None
    if not weights_only:
        from frontends.keras_like.saving.keras_config import model_to_keras_config

        arrays["__config__"] = np.array(json.dumps(model_to_keras_config(model, style=3)))
        compiled = keras_compile.compile_config(model, style=3) if include_optimizer else None
        if compiled is not None:
            arrays["__compile__"] = np.array(json.dumps(compiled))
    keep_optimizer = include_optimizer and (weights_only or compiled is not None)
    for path, values in keras_v3.state_arrays(model, keep_optimizer).items():
        for i, value in enumerate(values):
            arrays[f"{path}/vars/{i}"] = value
    np.savez(target, **arrays)


def _group(archive: Any, path: str) -> list[np.ndarray]:
    out = []
    while f"{path}/vars/{len(out)}" in archive.files:
        out.append(archive[f"{path}/vars/{len(out)}"])
    return out


def _set_weights(model: Any, archive: Any, label: str) -> list[np.ndarray]:
    if "weight_0000" in archive.files or ("__format__" not in archive.files
                                          and not any(k.startswith("layers/") for k in archive.files)):
        model.set_weights([archive[k] for k in sorted(k for k in archive.files
                                                      if k.startswith("weight_"))])
        return [archive[k] for k in sorted(k for k in archive.files if k.startswith("optimizer_"))]
    for path, layer in keras_v3.layer_paths(model):
        values = _group(archive, path)
        if len(values) != len(layer.weights):
            raise ValueError(f"{label}: layer {layer.name!r} ({path}) has {len(layer.weights)} "
                             f"weights, the file has {len(values)}")
        if values:
            layer.set_weights(values)
    return _group(archive, "optimizer")


def read_model(path: str, custom_objects: dict | None = None, compile: bool = True) -> Any:
    with np.load(path, allow_pickle=False) as archive:
        files = set(archive.files)
        if "__config__" in files:
            meta = json.loads(str(archive["__metadata__"])) if "__metadata__" in files else {}
            spec = json.loads(str(archive["__config__"]))
            model = model_from_keras_config(spec, major_version(meta.get("keras_version", "3")),
                                            custom_objects)
            compiled = json.loads(str(archive["__compile__"])) if "__compile__" in files else None
        elif "__model_config__" in files:  # the interim format
            from frontends.keras_like.models import model_from_json

            model = model_from_json(str(archive["__model_config__"]), custom_objects)
            compiled = None
            if "__training_config__" in files:
                old = json.loads(str(archive["__training_config__"]))
                if old.get("loss") is not None:
                    compiled = {"optimizer": old["optimizer"], "loss": old["loss"],
                                "metrics": old["metrics"], "loss_weights": old["loss_weight"]}
        else:
            raise ValueError(f"{path} holds weights only; build the model and use load_weights")
        optimizer = _set_weights(model, archive, path)
    if compile and compiled:
        keras_compile.compile_from_config(model, compiled)
        keras_compile.restore_optimizer(model, optimizer, path)
    return model


def read_weights(model: Any, path: str) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return _set_weights(model, archive, path)
