"""The Layer base class: weights as shared variables, shape inference, and ``call``.

A layer is built once (``build(input_shape)`` creates its weights) and may then
be called on several symbolic inputs: the model calls it once for the training
graph (``training=True``: dropout and noise active, batch statistics) and once
for the inference graph. Losses (activity regularizers) and updates (moving
averages) a call produces are collected by the model right after the call.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like import constraints as constraints_mod
from frontends.keras_like import initializers as initializers_mod
from frontends.keras_like import regularizers as regularizers_mod
from frontends.keras_like._compat import pop_alias, reject_unknown, snake_case
from graphc.graph.basic import Variable

Shape = tuple


class Layer:
    """Base class of all layers (Keras' ``Layer`` API: ``build``, ``call``, ``add_weight``...)."""

    def __init__(self, **kwargs: Any) -> None:
        input_dim = kwargs.pop("input_dim", None)
        input_shape = kwargs.pop("input_shape", None)
        batch_input_shape = pop_alias(kwargs, "batch_input_shape", "batch_shape")
        batch_size = kwargs.pop("batch_size", None)
        if input_shape is None and input_dim is not None:
            input_shape = (input_dim,)
        if batch_input_shape is None and input_shape is not None:
            batch_input_shape = (batch_size, *_as_shape(input_shape))
        self.batch_input_shape: Shape | None = (
            tuple(batch_input_shape) if batch_input_shape is not None else None)
        self.name: str = kwargs.pop("name", None) or K.unique_name(snake_case(type(self).__name__))
        self.trainable: bool = kwargs.pop("trainable", True)
        self.dtype: str | None = kwargs.pop("dtype", None)
        self._initial_weights = kwargs.pop("weights", None)
        self.activity_regularizer = regularizers_mod.get(kwargs.pop("activity_regularizer", None))
        for ignored in ("input_length", "input_dtype", "autocast"):
            kwargs.pop(ignored, None)
        reject_unknown(kwargs, type(self).__name__)
        self.built = False
        self._trainable_weights: list[K.KerasVariable] = []
        self._non_trainable_weights: list[K.KerasVariable] = []
        self._regularized: list[tuple[Any, Any]] = []
        self._call_losses: list[Variable] = []
        self._call_updates: list[tuple[Any, Variable]] = []
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    # -- weights ------------------------------------------------------------------------
    def add_weight(self, name: str, shape: Shape, initializer: Any = "glorot_uniform",
                   regularizer: Any = None, trainable: bool = True, constraint: Any = None,
                   dtype: str | None = None) -> K.KerasVariable:
        dtype = dtype or self.dtype or K.floatx()
        init = initializers_mod.get(initializer)
        value = initializers_mod.make_value(init, tuple(int(s) for s in shape), dtype)
        var = K.variable(value, dtype=dtype, name=f"{self.name}/{name}")
        var.constraint = constraints_mod.get(constraint)
        reg = regularizers_mod.get(regularizer)
        if reg is not None:
            self._regularized.append((var, reg))
        (self._trainable_weights if trainable else self._non_trainable_weights).append(var)
        return var

    @property
    def trainable_weights(self) -> list:
        return list(self._trainable_weights) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list:
        if self.trainable:
            return list(self._non_trainable_weights)
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    @property
    def weights(self) -> list:
        return list(self._trainable_weights) + list(self._non_trainable_weights)

    def get_weights(self) -> list[np.ndarray]:
        return [w.get_value() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"layer {self.name!r} has {len(own)} weights, got {len(weights)} arrays")
        for var, value in zip(own, weights):
            value = np.asarray(value)
            current = var.get_value(borrow=True)
            if value.shape != current.shape:
                raise ValueError(f"layer {self.name!r}: weight {var.name} has shape {current.shape}, "
                                 f"got {value.shape}")
            var.set_value(value.astype(var.dtype))

    def count_params(self) -> int:
        return int(sum(np.prod(w.get_value(borrow=True).shape) for w in self.weights))

    def regularization_losses(self) -> list[Variable]:
        """Penalties of regularized weights (activity penalties come from calls)."""
        out = []
        for var, reg in self._regularized:
            penalty = reg(var)
            if isinstance(penalty, Variable):
                out.append(penalty)
        return out

    # -- building and calling -----------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def call(self, inputs: Variable, training: bool = False) -> Variable:
        return inputs

    def ensure_built(self, input_shape: Shape) -> Shape:
        """Build (once) for ``input_shape`` (batch axis included); returns the output shape."""
        input_shape = tuple(input_shape)
        if not self.built:
            self.build(input_shape)
            self.built = True
            if self._initial_weights is not None:
                self.set_weights(self._initial_weights)
                self._initial_weights = None
        self.input_shape = input_shape
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        return self.output_shape

    def __call__(self, inputs: Variable, training: bool = False) -> Variable:
        if not self.built or self.output_shape is None:
            self.ensure_built(inputs.type.shape)
        self._call_losses, self._call_updates = [], []
        if _accepts_training(self.call):
            out = self.call(inputs, training=training)
        else:
            out = self.call(inputs)
        if self.activity_regularizer is not None:
            penalty = self.activity_regularizer(out)
            if isinstance(penalty, Variable):
                self._call_losses.append(penalty)
        return out

    def add_loss(self, loss: Variable) -> None:
        self._call_losses.append(loss)

    def add_update(self, updates: Any) -> None:
        """``(shared, new_value)`` pairs (or a list of them) applied by the training step."""
        if isinstance(updates, tuple) and len(updates) == 2 and isinstance(updates[1], Variable):
            updates = [updates]
        self._call_updates.extend(updates)

    def pop_call_effects(self) -> tuple[list[Variable], list[tuple[Any, Variable]]]:
        losses, updates = self._call_losses, self._call_updates
        self._call_losses, self._call_updates = [], []
        return losses, updates

    # -- configuration ------------------------------------------------------------------
    def get_config(self) -> dict:
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = self.batch_input_shape
        if self.dtype is not None:
            config["dtype"] = self.dtype
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers_mod.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def _as_shape(shape: Any) -> tuple:
    if isinstance(shape, int):
        return (shape,)
    return tuple(shape)


def _accepts_training(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
