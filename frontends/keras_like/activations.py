"""Activation functions by name or callable (symbolic: graphc variables in and out)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like._compat import lookup
from graphc.graph.basic import Variable

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def linear(x: Variable) -> Variable:
    return x


def relu(x: Variable, alpha: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> Variable:
    return K.relu(x, alpha=alpha, max_value=max_value, threshold=threshold)


def softmax(x: Variable, axis: int = -1) -> Variable:
    if x.ndim < 2:
        raise ValueError(f"softmax: cannot apply to a {x.ndim}-d tensor (needs a batch axis)")
    return K.softmax(x, axis=axis)


def log_softmax(x: Variable, axis: int = -1) -> Variable:
    return K.log_softmax(x, axis=axis)


def elu(x: Variable, alpha: float = 1.0) -> Variable:
    return K.elu(x, alpha)


def selu(x: Variable) -> Variable:
    return _SELU_SCALE * K.elu(x, _SELU_ALPHA)


def softplus(x: Variable) -> Variable:
    return K.softplus(x)


def softsign(x: Variable) -> Variable:
    return K.softsign(x)


def tanh(x: Variable) -> Variable:
    return K.tanh(x)


def sigmoid(x: Variable) -> Variable:
    return K.sigmoid(x)


def hard_sigmoid(x: Variable) -> Variable:
    """``clip(0.2 * x + 0.5, 0, 1)``, Keras 2's (and Theano's) definition."""
    return K.hard_sigmoid(x)


def hard_sigmoid_keras3(x: Variable) -> Variable:
    """Keras 3's ``hard_sigmoid``: ``relu6(x + 3) / 6`` (Keras 2's slope is 0.2, not 1/6)."""
    return K.clip(x / 6.0 + 0.5, 0.0, 1.0)


def hard_silu(x: Variable) -> Variable:
    """``x * hard_sigmoid_keras3(x)`` (Keras 3's ``hard_silu``/``hard_swish``)."""
    return x * hard_sigmoid_keras3(x)


def exponential(x: Variable) -> Variable:
    return K.exp(x)


def swish(x: Variable) -> Variable:
    """``x * sigmoid(x)`` (also called silu)."""
    return x * K.sigmoid(x)


silu = swish


def gelu(x: Variable, approximate: bool = False) -> Variable:
    """Gaussian error linear unit; exact (erf) by default, tanh approximation on request."""
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
        return 0.5 * x * (1.0 + T.tanh(inner))
    return 0.5 * x * (1.0 + T.erf(x / math.sqrt(2.0)))


def relu6(x: Variable) -> Variable:
    return K.relu(x, max_value=6.0)


def mish(x: Variable) -> Variable:
    return x * T.tanh(K.softplus(x))


_TABLE: dict[str, Callable[..., Variable]] = {
    "linear": linear, "relu": relu, "softmax": softmax, "log_softmax": log_softmax, "elu": elu,
    "selu": selu, "softplus": softplus, "softsign": softsign, "tanh": tanh, "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid, "hard_sigmoid_keras3": hard_sigmoid_keras3,
    "hard_silu": hard_silu, "exponential": exponential, "swish": swish, "silu": silu,
    "gelu": gelu, "relu6": relu6, "mish": mish,
}


def get(identifier: Any) -> Callable[..., Variable]:
    """An activation from a name, a callable or ``None`` (linear)."""
    if identifier is None:
        return linear
    found = lookup(identifier, _TABLE, "activation")
    if not callable(found):
        raise ValueError(f"could not interpret activation {identifier!r}")
    return found


def serialize(fn: Callable) -> str:
    return getattr(fn, "__name__", repr(fn))


def deserialize(name: Any) -> Callable[..., Variable]:
    return get(name)
