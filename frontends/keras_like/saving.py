"""Saving and loading (interim format): weights and config in one NumPy ``.npz`` archive.

The Keras file formats (``.keras`` zip with config.json + weights, legacy
``.h5``) belong to the saving issue; until it lands, those suffixes raise, and
any other path gets this archive, written at exactly the path given (so
``ModelCheckpoint('best-model')`` followed by ``load_weights('best-model')`` works).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

_KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def _check_path(filepath: Any) -> str:
    path = os.fspath(filepath)
    if path.lower().endswith(_KERAS_SUFFIXES):
        raise NotImplementedError(
            f"{path}: the Keras .keras/.h5 formats are not implemented yet; save to a path without "
            f"those suffixes to use the interim NumPy archive")
    return path


def _write(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def save_weights(model: Any, filepath: Any) -> None:
    path = _check_path(filepath)
    _write(path, {f"weight_{i:04d}": w for i, w in enumerate(model.get_weights())})


def _read_weights(archive: Any) -> list[np.ndarray]:
    keys = sorted(k for k in archive.files if k.startswith("weight_"))
    return [archive[k] for k in keys]


def load_weights(model: Any, filepath: Any) -> None:
    path = _check_path(filepath)
    with np.load(path, allow_pickle=False) as archive:
        weights = _read_weights(archive)
    model.set_weights(weights)


def save_model(model: Any, filepath: Any, include_optimizer: bool = True) -> None:
    path = _check_path(filepath)
    arrays: dict[str, np.ndarray] = {f"weight_{i:04d}": w for i, w in enumerate(model.get_weights())}
    arrays["__model_config__"] = np.array(model.to_json())
    if getattr(model, "_compiled", False) and include_optimizer:
        from frontends.keras_like import optimizers

        training = {"optimizer": optimizers.serialize(model.optimizer),
                    "loss": model.loss if isinstance(model.loss, str) else None,
                    "metrics": [m for m in model._metric_specs if isinstance(m, str)],
                    "loss_weight": model.loss_weight}
        arrays["__training_config__"] = np.array(json.dumps(training))
        for i, w in enumerate(model.optimizer.get_weights()):
            arrays[f"optimizer_{i:04d}"] = w
    _write(path, arrays)


def load_model(filepath: Any, custom_objects: dict | None = None, compile: bool = True) -> Any:
    from frontends.keras_like.models import model_from_json

    path = _check_path(filepath)
    with np.load(path, allow_pickle=False) as archive:
        if "__model_config__" not in archive.files:
            raise ValueError(f"{path} holds weights only; build the model and use load_weights")
        model = model_from_json(str(archive["__model_config__"]), custom_objects)
        model.set_weights(_read_weights(archive))
        if compile and "__training_config__" in archive.files:
            training = json.loads(str(archive["__training_config__"]))
            if training["loss"] is not None:
                model.compile(optimizer=training["optimizer"], loss=training["loss"],
                              metrics=training["metrics"], loss_weights=training["loss_weight"])
                opt_keys = sorted(k for k in archive.files if k.startswith("optimizer_"))
                _restore_optimizer(model, [archive[k] for k in opt_keys])
    return model


def _restore_optimizer(model: Any, values: list[np.ndarray]) -> None:
    """Optimizer slots exist once the training function is built; build it, then restore."""
    if not values:
        return
    model._make_train_function()
    if len(values) == len(model.optimizer.weights):
        model.optimizer.set_weights(values)
