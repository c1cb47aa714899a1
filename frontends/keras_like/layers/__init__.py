"""Layers (``from frontends.keras_like.layers import Dense, Dropout, ...``)."""

# Keras 1 module paths (keras.layers.core.Dense...) resolve through these submodules too.
from frontends.keras_like.layers import advanced_activations, core, noise, normalization
from frontends.keras_like.layers.advanced_activations import (
    ELU,
    LeakyReLU,
    PReLU,
    ReLU,
    Softmax,
    ThresholdedReLU,
)
from frontends.keras_like.layers.base import Layer
from frontends.keras_like.layers.core import (
    Activation,
    ActivityRegularization,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Lambda,
    Reshape,
)
from frontends.keras_like.layers.noise import AlphaDropout, GaussianDropout, GaussianNoise
from frontends.keras_like.layers.normalization import BatchNormalization, LayerNormalization

_CLASSES = {cls.__name__: cls for cls in (
    Activation, ActivityRegularization, AlphaDropout, BatchNormalization, Dense, Dropout, ELU,
    Flatten, GaussianDropout, GaussianNoise, InputLayer, Lambda, LayerNormalization, LeakyReLU,
    PReLU, ReLU, Reshape, Softmax, ThresholdedReLU)}


def deserialize(config: dict, custom_objects: dict | None = None) -> Layer:
    """A layer from ``{'class_name': 'Dense', 'config': {...}}``."""
    classes = {**_CLASSES, **(custom_objects or {})}
    name = config["class_name"]
    if name not in classes:
        raise ValueError(f"unknown layer class {name!r}; pass it in custom_objects")
    return classes[name].from_config(dict(config.get("config", {})))


def serialize(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}
