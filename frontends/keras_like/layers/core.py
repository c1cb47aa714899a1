"""Core layers: InputLayer/Input, Dense, Activation, Dropout, Flatten, Reshape, Lambda,
ActivityRegularization."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import graphc.tensor as T
from frontends.keras_like import activations
from frontends.keras_like import backend as K
from frontends.keras_like import constraints as constraints_mod
from frontends.keras_like import initializers as initializers_mod
from frontends.keras_like import regularizers as regularizers_mod
from frontends.keras_like._compat import merge_alias, pop_alias
from frontends.keras_like.layers.base import Layer, Shape
from graphc.graph.basic import Variable
from graphc.tensor.random import RandomStream


class InputLayer(Layer):
    """Declares the input shape of a Sequential model (not counted among its layers)."""

    def __init__(self, input_shape: Any = None, batch_size: int | None = None, **kwargs: Any) -> None:
        shape = pop_alias(kwargs, "shape")
        if shape is not None:
            input_shape = shape
        super().__init__(input_shape=input_shape, batch_size=batch_size, **kwargs)
        if self.batch_input_shape is None:
            raise ValueError("InputLayer needs input_shape (or shape / batch_input_shape)")


def Input(shape: Any = None, batch_size: int | None = None, name: str | None = None,
          dtype: str | None = None, batch_shape: Any = None, **kwargs: Any) -> InputLayer:
    """``Input(shape=(784,))``: usable as the first entry of a Sequential model."""
    if batch_shape is not None:
        return InputLayer(batch_input_shape=batch_shape, name=name, dtype=dtype, **kwargs)
    return InputLayer(input_shape=shape, batch_size=batch_size, name=name, dtype=dtype, **kwargs)


class Dense(Layer):
    """``activation(dot(x, kernel) + bias)``; kernel of shape (input features, units)."""

    def __init__(self, units: int | None = None, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = None, bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, **kwargs: Any) -> None:
        units = merge_alias(units, kwargs, "units", "output_dim")
        kernel_initializer = merge_alias(kernel_initializer, kwargs, "kernel_initializer", "init")
        kernel_regularizer = merge_alias(kernel_regularizer, kwargs, "kernel_regularizer", "W_regularizer")
        bias_regularizer = merge_alias(bias_regularizer, kwargs, "bias_regularizer", "b_regularizer")
        kernel_constraint = merge_alias(kernel_constraint, kwargs, "kernel_constraint", "W_constraint")
        bias_constraint = merge_alias(bias_constraint, kwargs, "bias_constraint", "b_constraint")
        if "bias" in kwargs:  # Keras 1
            use_bias = kwargs.pop("bias")
        super().__init__(**kwargs)
        if units is None or int(units) <= 0:
            raise ValueError(f"Dense needs a positive number of units, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers_mod.get(kernel_initializer or "glorot_uniform")
        self.bias_initializer = initializers_mod.get(bias_initializer)
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.kernel_constraint = constraints_mod.get(kernel_constraint)
        self.bias_constraint = constraints_mod.get(bias_constraint)

    def build(self, input_shape: Shape) -> None:
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"{self.name}: the last axis of the input must be known, got {input_shape}")
        self.kernel = self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer,
                                      self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        self.bias_regularizer, constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def call(self, inputs: Variable) -> Variable:
        out = T.dot(inputs, self.kernel)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers_mod.serialize(self.kernel_initializer),
                "bias_initializer": initializers_mod.serialize(self.bias_initializer),
                "kernel_regularizer": _maybe(regularizers_mod.serialize, self.kernel_regularizer),
                "bias_regularizer": _maybe(regularizers_mod.serialize, self.bias_regularizer),
                "kernel_constraint": _maybe(constraints_mod.serialize, self.kernel_constraint),
                "bias_constraint": _maybe(constraints_mod.serialize, self.bias_constraint)}


def _maybe(fn: Callable, value: Any) -> Any:
    return None if value is None else fn(value)


class Activation(Layer):
    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs: Variable) -> Variable:
        return self.activation(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Zero a fraction ``rate`` (Keras 1: ``p``) of inputs while training, scaling the rest by
    ``1 / (1 - rate)``; the identity at inference."""

    def __init__(self, rate: float | None = None, noise_shape: Any = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        rate = merge_alias(rate, kwargs, "rate", "p")
        super().__init__(**kwargs)
        if rate is None or not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self._stream: RandomStream | None = None

    def stream(self) -> RandomStream:
        if self._stream is None:
            self._stream = RandomStream(self.seed if self.seed is not None else K.fresh_seed())
        return self._stream

    def _noise_size(self, inputs: Variable) -> tuple:
        if self.noise_shape is None:
            return tuple(_dims(inputs))
        dims = _dims(inputs)
        return tuple(dims[i] if s is None else int(s) for i, s in enumerate(self.noise_shape))

    def call(self, inputs: Variable, training: bool = False) -> Variable:
        if not training or self.rate == 0:
            return inputs
        u = self.stream().uniform(size=self._noise_size(inputs), dtype=inputs.dtype)
        keep = T.cast(T.ge(u, self.rate), inputs.dtype)
        return inputs * keep * (1.0 / (1.0 - self.rate))

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


def _dims(x: Variable) -> list:
    """Each axis length: the static int when known, else a symbolic scalar."""
    return [s if s is not None else x.shape[i] for i, s in enumerate(x.type.shape)]


class Flatten(Layer):
    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        if None in rest:
            raise ValueError(f"{self.name}: Flatten needs the non-batch axes known, got {input_shape}")
        return (input_shape[0], math.prod(rest))

    def call(self, inputs: Variable) -> Variable:
        return T.flatten(inputs, 2)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshape the non-batch axes to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape: Any, **kwargs: Any) -> None:
        dims = kwargs.pop("dims", None)  # Keras 1 spelling
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape if dims is None else dims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        target = list(self.target_shape)
        rest = input_shape[1:]
        if -1 in target:
            if None in rest:
                return (input_shape[0], *(None if t == -1 else t for t in target))
            known = math.prod(t for t in target if t != -1)
            total = math.prod(rest)
            if known == 0 or total % known:
                raise ValueError(f"{self.name}: cannot reshape {input_shape} to {self.target_shape}")
            target[target.index(-1)] = total // known
        elif None not in rest and math.prod(rest) != math.prod(target):
            raise ValueError(f"{self.name}: cannot reshape {input_shape} to {self.target_shape}")
        return (input_shape[0], *target)

    def call(self, inputs: Variable) -> Variable:
        out_shape = self.compute_output_shape(inputs.type.shape)
        return T.reshape(inputs, (-1, *(-1 if s is None else s for s in out_shape[1:])))

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": self.target_shape}


class Lambda(Layer):
    """Wrap a symbolic function of the input; ``output_shape`` is needed when it changes the shape
    in a way that cannot be traced (it is otherwise taken from the built graph)."""

    def __init__(self, function: Callable[[Variable], Variable], output_shape: Any = None,
                 arguments: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.function = function
        self._output_shape = output_shape
        self.arguments = arguments or {}

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        if self._output_shape is not None:
            return (input_shape[0], *self._output_shape)
        probe = T.tensor(K.floatx(), shape=input_shape)
        return tuple(self.function(probe, **self.arguments).type.shape)

    def call(self, inputs: Variable) -> Variable:
        return self.function(inputs, **self.arguments)


class ActivityRegularization(Layer):
    """The identity, adding ``l1 * sum|x| + l2 * sum x**2`` of its input to the loss."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(activity_regularizer=regularizers_mod.L1L2(l1, l2), **kwargs)
        self.l1, self.l2 = l1, l2

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
