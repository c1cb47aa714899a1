"""``Sequential``: a linear stack of layers, trained through compiled graphc functions.

The input shape comes from the first layer (``input_dim``, ``input_shape``,
``batch_input_shape``) or an ``Input``/``InputLayer``; without one the model is
built when it first sees data. See :mod:`frontends.keras_like.engine.training`
for compile/fit/evaluate/predict.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like import layers as layers_mod
from frontends.keras_like.engine.summary import print_summary
from frontends.keras_like.engine.training import TrainingMixin
from frontends.keras_like.layers.base import Layer
from frontends.keras_like.layers.core import InputLayer
from graphc.graph.basic import Variable


class Sequential(TrainingMixin):
    """``Sequential([Dense(32, input_dim=784), Activation('relu'), Dense(10)])`` or ``.add(...)``."""

    def __init__(self, layers: Any = None, name: str | None = None) -> None:
        self.name = name or K.unique_name("sequential")
        self.layers: list[Layer] = []
        self._batch_input_shape: tuple | None = None
        self.built = False
        self._trainable = True
        self._compiled = False
        self.history: Any = None
        self.stop_training = False
        self._reset_compiled()
        if isinstance(layers, Layer):  # Keras 1 examples pass a single layer
            layers = [layers]
        for layer in layers or []:
            self.add(layer)

    # -- structure ---------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer; an ``InputLayer`` (or ``Input(...)``) first sets the input shape."""
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError("an InputLayer can only be the first layer of a Sequential model")
            self._batch_input_shape = layer.batch_input_shape
            return
        if isinstance(layer, Sequential):
            raise TypeError("nesting Sequential models is not supported; add their layers instead")
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {type(layer).__name__}")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"all layers of a model need unique names; {layer.name!r} is taken")
        if not self.layers and self._batch_input_shape is None:
            self._batch_input_shape = layer.batch_input_shape
        elif self.layers and layer.batch_input_shape is not None and self.built:
            expected = tuple(layer.batch_input_shape[1:])
            if expected != tuple(self.output_shape[1:]):
                raise ValueError(f"layer {layer.name!r} expects inputs of shape {expected} but the "
                                 f"model so far outputs {self.output_shape[1:]}")
        self.layers.append(layer)
        self._reset_compiled()
        if self._batch_input_shape is not None:
            self._build_shapes()

    def pop(self) -> Layer:
        if not self.layers:
            raise TypeError("there are no layers in the model")
        layer = self.layers.pop()
        self._reset_compiled()
        if self.layers and self._batch_input_shape is not None:
            self._build_shapes()
        return layer

    def _build_shapes(self) -> None:
        shape = tuple(self._batch_input_shape)
        for layer in self.layers:
            shape = layer.ensure_built(shape)
        self.built = True

    def build(self, input_shape: Any = None) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis included)."""
        if input_shape is not None:
            self._batch_input_shape = tuple(input_shape)
        if self._batch_input_shape is None:
            raise ValueError("build: give an input shape (no layer declares one)")
        self._build_shapes()

    @property
    def input_shape(self) -> tuple:
        if self._batch_input_shape is None:
            raise AttributeError("the model has no input shape yet (it is built when it sees data)")
        return tuple(self._batch_input_shape)

    @property
    def output_shape(self) -> tuple:
        if not self.built:
            raise AttributeError("the model is not built yet; its output shape is unknown")
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def _forward(self, x: Variable, training: bool) -> tuple[Variable, list, list]:
        """The symbolic output for input ``x`` plus the call losses and updates it creates."""
        losses: list = []
        updates: list = []
        for layer in self.layers:
            x = layer(x, training=training)
            call_losses, call_updates = layer.pop_call_effects()
            losses += call_losses
            updates += call_updates
        return x, losses, updates

    def __call__(self, x: Variable, training: bool = False) -> Variable:
        """Apply the model to a symbolic graphc tensor (inference graph unless ``training``)."""
        if not self.built:
            self.build(x.type.shape)
        return self._forward(x, training)[0]

    # -- weights -------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        self._reset_compiled()

    @property
    def weights(self) -> list:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list:
        if not self._trainable:
            return []
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list:
        if not self._trainable:
            return self.weights
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        return [w.get_value() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        weights = list(weights)
        expected = len(self.weights)
        if len(weights) != expected:
            raise ValueError(f"the model has {expected} weight arrays, got {len(weights)}")
        for layer in self.layers:
            n = len(layer.weights)
            layer.set_weights(weights[:n])
            weights = weights[n:]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}")

    # -- description ---------------------------------------------------------------------
    def summary(self, line_length: int | None = None, positions: Any = None,
                print_fn: Any = None) -> None:
        if not self.built:
            raise ValueError("this model has not yet been built: give the first layer an input "
                             "shape (input_dim=..., input_shape=...) or call build() or fit()")
        print_summary(self, line_length, positions, print_fn)

    def get_config(self) -> dict:
        config: dict[str, Any] = {"name": self.name,
                                  "layers": [layers_mod.serialize(layer) for layer in self.layers]}
        if self._batch_input_shape is not None:
            config["build_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: Any, custom_objects: dict | None = None) -> Sequential:
        if isinstance(config, list):  # Keras 2.2 stored the layer list itself
            config = {"layers": config}
        model = cls(name=config.get("name"))
        for layer_config in config["layers"]:
            if layer_config.get("class_name") == "InputLayer":
                cfg = layer_config.get("config", {})
                shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                model._batch_input_shape = tuple(shape)
                continue
            model.add(layers_mod.deserialize(layer_config, custom_objects))
        if not model.built and config.get("build_input_shape"):
            model.build(tuple(config["build_input_shape"]))
        return model

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as Keras 3 serializes it (``model_from_json`` reads it back)."""
        from frontends.keras_like import saving

        return saving.model_to_json(self, **kwargs)

    # -- persistence (see frontends.keras_like.saving) -------------------------------------
    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        from frontends.keras_like import saving

        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str, by_name: bool = False, skip_mismatch: bool = False,
                     **kwargs: Any) -> None:
        from frontends.keras_like import saving

        saving.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)

    def save(self, filepath: str, overwrite: bool = True, include_optimizer: bool = True) -> None:
        from frontends.keras_like import saving

        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    # -- pickling: compiled functions are dropped and rebuilt on first use -------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_train_fn=None, _test_fn=None, _predict_fn=None, history=None)
        state["layers"] = [_without_graph(layer) for layer in self.layers]
        if state.get("optimizer") is not None:
            state["optimizer"] = _without_graph(state["optimizer"])
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        opt = state.get("optimizer")
        if opt is not None and getattr(opt, "_slot_vars", None):
            # slots are keyed by id(weight); the unpickled weights have new ids
            opt._slot_vars = {(id(var.owner_weight), key[1]): var
                              for key, var in opt._slot_vars.items()}

    def __repr__(self) -> str:
        return f"<Sequential name={self.name} layers={[layer.name for layer in self.layers]}>"


def _without_graph(obj: Any) -> Any:
    """A shallow copy without the symbolic graphs built for the compiled functions (they hold
    local functions pickle cannot take): non-shared variables are dropped, a random stream is
    replaced by a fresh one with the same seed (dropout masks restart from that seed)."""
    from graphc.compile.shared import SharedVariable
    from graphc.tensor.random import RandomStream

    drop = {k for k, v in vars(obj).items() if isinstance(v, Variable) and not isinstance(v, SharedVariable)}
    streams = {k for k, v in vars(obj).items() if isinstance(v, RandomStream)}
    if not drop and not streams:
        return obj
    clone = copy.copy(obj)
    for key in drop:
        delattr(clone, key)
    for key in streams:
        setattr(clone, key, RandomStream(getattr(obj, key)._seed))
    return clone


def model_from_json(text: str, custom_objects: dict | None = None) -> Sequential:
    """A model from ``to_json`` text (graphc's, Keras 3's or Keras 2's)."""
    from frontends.keras_like import saving

    return saving.model_from_json(text, custom_objects)


def model_from_config(config: dict, custom_objects: dict | None = None) -> Sequential:
    from frontends.keras_like.saving.keras_config import model_from_keras_config

    if isinstance(config, dict) and "class_name" not in config:
        config = {"class_name": "Sequential", "config": config}
    return model_from_keras_config(config, 3 if "module" in config else 2, custom_objects)


def load_model(filepath: str, custom_objects: dict | None = None, compile: bool = True) -> Sequential:
    """Load a model saved by ``model.save`` or by Keras (see :mod:`frontends.keras_like.saving`)."""
    from frontends.keras_like import saving

    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile)
