"""BatchNormalization (and LayerNormalization).

While training, BatchNormalization normalizes with the batch statistics and its
moving averages are updated *inside the compiled training step* (extra
updates); at inference it uses the moving averages. Weights, in Keras order:
gamma, beta (trainable), moving_mean, moving_variance (not trainable).
"""

from __future__ import annotations

from typing import Any

import graphc.tensor as T
from frontends.keras_like import constraints as constraints_mod
from frontends.keras_like import initializers as initializers_mod
from frontends.keras_like import regularizers as regularizers_mod
from frontends.keras_like._compat import merge_alias
from frontends.keras_like.layers.base import Layer, Shape
from graphc.graph.basic import Variable


def _broadcast_param(p: Variable, ndim: int, axis: int) -> Variable:
    """A per-feature vector laid out to broadcast against an ``ndim``-d input along ``axis``."""
    if axis == ndim - 1:
        return p
    pattern = ["x"] * ndim
    pattern[axis] = 0
    return T.dimshuffle(p, *pattern)


class BatchNormalization(Layer):
    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: Any = None,
                 gamma_initializer: Any = None, moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", beta_regularizer: Any = None,
                 gamma_regularizer: Any = None, beta_constraint: Any = None,
                 gamma_constraint: Any = None, **kwargs: Any) -> None:
        beta_initializer = merge_alias(beta_initializer, kwargs, "beta_initializer", "beta_init")
        gamma_initializer = merge_alias(gamma_initializer, kwargs, "gamma_initializer", "gamma_init")
        mode = kwargs.pop("mode", 0)  # Keras 1: only the default (feature-wise) mode exists here
        if mode not in (0, None):
            raise ValueError(f"BatchNormalization(mode={mode}) is not supported; use mode=0")
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer = initializers_mod.get(beta_initializer or "zeros")
        self.gamma_initializer = initializers_mod.get(gamma_initializer or "ones")
        self.moving_mean_initializer = initializers_mod.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers_mod.get(moving_variance_initializer)
        self.beta_regularizer = regularizers_mod.get(beta_regularizer)
        self.gamma_regularizer = regularizers_mod.get(gamma_regularizer)
        self.beta_constraint = constraints_mod.get(beta_constraint)
        self.gamma_constraint = constraints_mod.get(gamma_constraint)

    def build(self, input_shape: Shape) -> None:
        axis = self.axis % len(input_shape)
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(f"{self.name}: axis {self.axis} of the input must have a known length")
        shape = (dim,)
        self.gamma = (self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer,
                                      constraint=self.gamma_constraint) if self.scale else None)
        self.beta = (self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer,
                                     constraint=self.beta_constraint) if self.center else None)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer, trainable=False)

    def call(self, inputs: Variable, training: bool = False) -> Variable:
        ndim = inputs.ndim
        axis = self.axis % ndim
        reduce_axes = tuple(i for i in range(ndim) if i != axis)
        if training:
            mean = T.mean(inputs, axis=reduce_axes)
            variance = T.var(inputs, axis=reduce_axes)
            m = self.momentum
            self.add_update([
                (self.moving_mean, T.cast(self.moving_mean * m + mean * (1.0 - m), inputs.dtype)),
                (self.moving_variance,
                 T.cast(self.moving_variance * m + variance * (1.0 - m), inputs.dtype)),
            ])
        else:
            mean, variance = self.moving_mean, self.moving_variance
        out = (inputs - _broadcast_param(mean, ndim, axis)) / T.sqrt(
            _broadcast_param(variance, ndim, axis) + self.epsilon)
        if self.gamma is not None:
            out = out * _broadcast_param(self.gamma, ndim, axis)
        if self.beta is not None:
            out = out + _broadcast_param(self.beta, ndim, axis)
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers_mod.serialize(self.beta_initializer),
                "gamma_initializer": initializers_mod.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers_mod.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers_mod.serialize(self.moving_variance_initializer),
                **{name: None if getattr(self, name) is None else module.serialize(getattr(self, name))
                   for name, module in (("beta_regularizer", regularizers_mod),
                                        ("gamma_regularizer", regularizers_mod),
                                        ("beta_constraint", constraints_mod),
                                        ("gamma_constraint", constraints_mod))}}


class LayerNormalization(Layer):
    """Normalize each sample over ``axis`` (the features), then scale and shift."""

    def __init__(self, axis: int = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis, self.epsilon, self.center, self.scale = axis, float(epsilon), center, scale
        self.beta_initializer = initializers_mod.get(beta_initializer)
        self.gamma_initializer = initializers_mod.get(gamma_initializer)

    def build(self, input_shape: Shape) -> None:
        dim = input_shape[self.axis]
        self.gamma = self.add_weight("gamma", (dim,), self.gamma_initializer) if self.scale else None
        self.beta = self.add_weight("beta", (dim,), self.beta_initializer) if self.center else None

    def call(self, inputs: Variable) -> Variable:
        ndim = inputs.ndim
        axis = self.axis % ndim
        mean = T.mean(inputs, axis=axis, keepdims=True)
        variance = T.var(inputs, axis=axis, keepdims=True)
        out = (inputs - mean) / T.sqrt(variance + self.epsilon)
        if self.gamma is not None:
            out = out * _broadcast_param(self.gamma, ndim, axis)
        if self.beta is not None:
            out = out + _broadcast_param(self.beta, ndim, axis)
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers_mod.serialize(self.beta_initializer),
                "gamma_initializer": initializers_mod.serialize(self.gamma_initializer)}
