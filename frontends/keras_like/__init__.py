"""Keras-style Sequential models built as graphc graphs (see DESIGN.md).

``import frontends.keras_like as keras`` gives the Keras module layout:
``keras.models.Sequential``, ``keras.layers.Dense``, ``keras.optimizers.Adam``,
``keras.callbacks.EarlyStopping``, ``keras.utils.to_categorical``... Each
model trains through one compiled graphc function (see ``engine/training.py``).
"""

from frontends.keras_like import (
    activations,
    backend,
    callbacks,
    constraints,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    utils,
)
from frontends.keras_like.layers import Input
from frontends.keras_like.models import Sequential, load_model

__all__ = [
    "activations", "backend", "callbacks", "constraints", "initializers", "layers", "losses",
    "metrics", "models", "optimizers", "regularizers", "utils", "Sequential", "Input", "load_model",
]
