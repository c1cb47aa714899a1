"""Activation layers with parameters: LeakyReLU, PReLU (learnable), ELU, ThresholdedReLU,
Softmax, ReLU."""

from __future__ import annotations

from typing import Any

import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like import constraints as constraints_mod
from frontends.keras_like import initializers as initializers_mod
from frontends.keras_like import regularizers as regularizers_mod
from frontends.keras_like._compat import merge_alias
from frontends.keras_like.layers.base import Layer, Shape
from graphc.graph.basic import Variable


class LeakyReLU(Layer):
    """``x if x > 0 else alpha * x`` (Keras 3: ``negative_slope``), alpha = 0.3 by default."""

    def __init__(self, alpha: float | None = None, **kwargs: Any) -> None:
        alpha = merge_alias(alpha, kwargs, "alpha", "negative_slope")
        super().__init__(**kwargs)
        self.alpha = 0.3 if alpha is None else float(alpha)

    def call(self, inputs: Variable) -> Variable:
        return K.relu(inputs, alpha=self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Leaky ReLU with a learned slope per unit (shared along ``shared_axes``)."""

    def __init__(self, alpha_initializer: Any = None, alpha_regularizer: Any = None,
                 alpha_constraint: Any = None, shared_axes: Any = None, **kwargs: Any) -> None:
        alpha_initializer = merge_alias(alpha_initializer, kwargs, "alpha_initializer", "init")
        super().__init__(**kwargs)
        self.alpha_initializer = initializers_mod.get(alpha_initializer or "zeros")
        self.alpha_regularizer = regularizers_mod.get(alpha_regularizer)
        self.alpha_constraint = constraints_mod.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes: tuple = ()
        else:
            self.shared_axes = tuple(shared_axes) if hasattr(shared_axes, "__iter__") else (shared_axes,)

    def build(self, input_shape: Shape) -> None:
        shape = [1 if i in self.shared_axes else s for i, s in enumerate(input_shape[1:], start=1)]
        if None in shape:
            raise ValueError(f"{self.name}: PReLU needs known non-batch axes, got {input_shape}")
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     self.alpha_regularizer, constraint=self.alpha_constraint)

    def call(self, inputs: Variable) -> Variable:
        pos = K.relu(inputs)
        neg = -self.alpha * K.relu(-inputs)
        return pos + neg

    def get_config(self) -> dict:
        return {**super().get_config(),
                "alpha_initializer": initializers_mod.serialize(self.alpha_initializer),
                "alpha_regularizer": None if self.alpha_regularizer is None
                else regularizers_mod.serialize(self.alpha_regularizer),
                "alpha_constraint": None if self.alpha_constraint is None
                else constraints_mod.serialize(self.alpha_constraint),
                "shared_axes": list(self.shared_axes) or None}


class ELU(Layer):
    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs: Variable) -> Variable:
        return K.elu(inputs, self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class ThresholdedReLU(Layer):
    """``x if x > theta else 0``."""

    def __init__(self, theta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theta = float(theta)

    def call(self, inputs: Variable) -> Variable:
        return inputs * T.cast(T.gt(inputs, self.theta), inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "theta": self.theta}


class Softmax(Layer):
    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs: Variable) -> Variable:
        return K.softmax(inputs, axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class ReLU(Layer):
    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def call(self, inputs: Variable) -> Variable:
        return K.relu(inputs, alpha=self.negative_slope, max_value=self.max_value,
                      threshold=self.threshold)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}
