"""A small Keras-``backend``-style layer (``from frontends.keras_like import backend as K``).

Everything symbolic in the frontend goes through these helpers, so a custom loss
written against ``K.mean``/``K.square``... builds the same graphc graph as the
built-in ones. It also owns the session state Keras keeps globally: floatX,
epsilon, the random seed used by initializers and noise layers, and the
per-class counters behind automatic layer names (``dense_1``, ``dense_2``...).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np

import graphc
import graphc.tensor as T
from graphc.compile.shared import SharedVariable
from graphc.graph.basic import Variable
from graphc.graph.type import TensorType

_EPSILON = 1e-7
_state: dict[str, Any] = {"rng": np.random.default_rng(), "seed_counter": itertools.count()}
_name_counts: dict[str, int] = defaultdict(int)


# ---------------------------------------------------------------------------------------
# session state
def floatx() -> str:
    """The float dtype of weights and inputs: graphc's ``config.floatX``."""
    return graphc.config.floatX


def set_floatx(dtype: str) -> None:
    graphc.config.floatX = dtype


def epsilon() -> float:
    """The fuzz factor Keras adds to avoid dividing by zero (1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    global _EPSILON
    _EPSILON = float(value)


def set_random_seed(seed: int) -> None:
    """Seed everything random in the frontend (initializers, dropout, shuffling)."""
    np.random.seed(seed)
    _state["rng"] = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    """The frontend's global NumPy generator (initializers without a seed, shuffling)."""
    return _state["rng"]


def fresh_seed() -> int:
    """A seed drawn from the global generator (for random streams of noise layers)."""
    return int(_state["rng"].integers(0, 2**31 - 1))


def unique_name(base: str) -> str:
    """Keras 2's automatic names: ``dense_1``, ``dense_2``, ... per base name."""
    _name_counts[base] += 1
    return f"{base}_{_name_counts[base]}"


def clear_session() -> None:
    """Reset automatic layer/model names (as ``keras.backend.clear_session``)."""
    _name_counts.clear()


# ---------------------------------------------------------------------------------------
# variables
class KerasVariable(SharedVariable):
    """A shared variable that also behaves like a Keras variable (``float()``, ``numpy()``)."""

    def numpy(self) -> np.ndarray:
        return self.get_value()

    def assign(self, value: Any) -> None:
        self.set_value(np.asarray(value, dtype=self.dtype))

    def __float__(self) -> float:
        return float(self.get_value())

    def __int__(self) -> int:
        return int(self.get_value())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.get_value()
        return value if dtype is None else value.astype(dtype)

    def __repr__(self) -> str:
        return f"<KerasVariable {self.name} shape={self.get_value(borrow=True).shape} dtype={self.dtype}>"


def variable(value: Any, dtype: str | None = None, name: str | None = None) -> KerasVariable:
    """A shared variable with a fixed static shape (weights, optimizer state, counters)."""
    arr = np.array(value, dtype=dtype or floatx())
    return KerasVariable(TensorType(arr.dtype, arr.shape), arr, name=name)


def get_value(x: Any) -> Any:
    if isinstance(x, SharedVariable):
        return x.get_value()
    if isinstance(x, Variable):
        return x.eval()
    return x


def set_value(x: SharedVariable, value: Any) -> None:
    x.set_value(np.asarray(value, dtype=x.dtype))


def batch_get_value(xs: list) -> list:
    return [get_value(x) for x in xs]


def batch_set_value(pairs: list) -> None:
    for x, value in pairs:
        set_value(x, value)


def eval(x: Any) -> np.ndarray:  # noqa: A001  (Keras' name)
    return get_value(x)


def placeholder(shape: tuple | None = None, ndim: int | None = None, dtype: str | None = None,
                name: str | None = None) -> Variable:
    if shape is None:
        shape = (None,) * (ndim or 0)
    return T.tensor(dtype or floatx(), shape=tuple(shape), name=name)


def int_shape(x: Variable) -> tuple:
    return tuple(x.type.shape)


def ndim(x: Variable) -> int:
    return x.ndim


def dtype(x: Variable) -> str:
    return x.dtype


def is_tensor(x: Any) -> bool:
    return isinstance(x, Variable)


def function(inputs: list, outputs: Any, updates: Any = None, name: str | None = None) -> Any:
    return graphc.function(inputs, outputs, updates=updates, name=name,
                           on_unused_input="ignore", allow_input_downcast=True)


def gradients(loss: Variable, variables: list) -> list:
    return graphc.grad(loss, list(variables), disconnected_inputs="ignore")


# ---------------------------------------------------------------------------------------
# symbolic helpers (Keras names on top of graphc.tensor)
def cast(x: Any, dtype: str) -> Variable:
    return T.cast(x, dtype)


def cast_to_floatx(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=floatx())


def constant(value: Any, dtype: str | None = None) -> Variable:
    return T.constant(np.asarray(value, dtype=dtype or floatx()))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return T.mean(x, axis=axis, keepdims=keepdims)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return T.sum(x, axis=axis, keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return T.max(x, axis=axis, keepdims=keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:  # noqa: A001
    return T.min(x, axis=axis, keepdims=keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return T.prod(x, axis=axis, keepdims=keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return T.var(x, axis=axis, keepdims=keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Variable:
    return T.std(x, axis=axis, keepdims=keepdims)


def argmax(x: Any, axis: int = -1) -> Variable:
    return T.argmax(x, axis=axis)


def argmin(x: Any, axis: int = -1) -> Variable:
    return T.argmin(x, axis=axis)


def square(x: Any) -> Variable:
    return T.sqr(x)


def abs(x: Any) -> Variable:  # noqa: A001
    return T.abs(x)


def sqrt(x: Any) -> Variable:
    return T.sqrt(x)


def exp(x: Any) -> Variable:
    return T.exp(x)


def log(x: Any) -> Variable:
    return T.log(x)


def pow(x: Any, a: Any) -> Variable:  # noqa: A001
    return T.pow(x, a)


def sign(x: Any) -> Variable:
    return T.sgn(x)


def round(x: Any) -> Variable:  # noqa: A001
    return T.round(x)


def clip(x: Any, lo: Any, hi: Any) -> Variable:
    if hi is None:
        hi = np.inf
    if lo is None:
        lo = -np.inf
    return T.clip(x, lo, hi)


def maximum(x: Any, y: Any) -> Variable:
    return T.maximum(x, y)


def minimum(x: Any, y: Any) -> Variable:
    return T.minimum(x, y)


def equal(x: Any, y: Any) -> Variable:
    return T.eq(x, y)


def not_equal(x: Any, y: Any) -> Variable:
    return T.neq(x, y)


def greater(x: Any, y: Any) -> Variable:
    return T.gt(x, y)


def greater_equal(x: Any, y: Any) -> Variable:
    return T.ge(x, y)


def less(x: Any, y: Any) -> Variable:
    return T.lt(x, y)


def less_equal(x: Any, y: Any) -> Variable:
    return T.le(x, y)


def switch(cond: Any, a: Any, b: Any) -> Variable:
    return T.switch(cond, a, b)


def dot(x: Any, y: Any) -> Variable:
    return T.dot(x, y)


def tanh(x: Any) -> Variable:
    return T.tanh(x)


def sigmoid(x: Any) -> Variable:
    return T.nnet.sigmoid(x)


def hard_sigmoid(x: Any) -> Variable:
    return T.nnet.hard_sigmoid(x)


def softplus(x: Any) -> Variable:
    return T.nnet.softplus(x)


def softsign(x: Any) -> Variable:
    return T.nnet.softsign(x)


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Variable:
    if threshold != 0.0:
        below = alpha * (x - threshold) if alpha else T.zeros_like(x)
        out = T.switch(T.ge(x, threshold), x, below)
    else:
        out = T.nnet.relu(x, alpha)
    if max_value is not None:
        out = T.minimum(out, max_value)
    return out


def elu(x: Any, alpha: float = 1.0) -> Variable:
    return T.nnet.elu(x, alpha)


def softmax(x: Any, axis: int = -1) -> Variable:
    return T.nnet.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Variable:
    return T.nnet.log_softmax(x, axis=axis)


def l2_normalize(x: Any, axis: int = -1) -> Variable:
    square_sum = T.sum(T.sqr(x), axis=axis, keepdims=True)
    return x / T.sqrt(T.maximum(square_sum, 1e-12))


def reshape(x: Any, shape: Any) -> Variable:
    return T.reshape(x, shape)


def flatten(x: Any) -> Variable:
    return T.flatten(x)


def batch_flatten(x: Any) -> Variable:
    return T.flatten(x, 2)


def expand_dims(x: Any, axis: int = -1) -> Variable:
    pattern: list[Any] = list(range(x.ndim))
    pattern.insert(axis if axis >= 0 else x.ndim + 1 + axis, "x")
    return T.dimshuffle(x, *pattern)


def zeros_like(x: Any, dtype: str | None = None) -> Variable:
    return T.zeros_like(x, dtype=dtype)


def ones_like(x: Any, dtype: str | None = None) -> Variable:
    return T.ones_like(x, dtype=dtype)


def one_hot(indices: Any, num_classes: int) -> Variable:
    """Float one-hot rows for integer ``indices`` (any shape; a new last axis)."""
    classes = T.constant(np.arange(num_classes, dtype="int64"))
    return T.cast(T.eq(expand_dims(indices, -1), classes), floatx())


def in_top_k(predictions: Any, targets: Any, k: int) -> Variable:
    """Whether each row's target class is among its ``k`` largest predictions (ties count in)."""
    target_score = T.sum(predictions * one_hot(targets, predictions.type.shape[-1]), axis=-1,
                         keepdims=True)
    better = T.sum(T.cast(T.gt(predictions, target_score), "int64"), axis=-1)
    return T.lt(better, k)


def stop_gradient(x: Any) -> Any:
    """Kept for compatibility; graphc differentiates through everything reachable."""
    return x


def random_uniform_variable(shape: tuple, low: float, high: float, dtype: str | None = None,
                            name: str | None = None, seed: int | None = None) -> KerasVariable:
    gen = np.random.default_rng(seed) if seed is not None else rng()
    return variable(gen.uniform(low, high, size=shape), dtype=dtype, name=name)


def random_normal_variable(shape: tuple, mean: float, scale: float, dtype: str | None = None,
                           name: str | None = None, seed: int | None = None) -> KerasVariable:
    gen = np.random.default_rng(seed) if seed is not None else rng()
    return variable(gen.normal(mean, scale, size=shape), dtype=dtype, name=name)


def image_data_format() -> str:
    return "channels_last"


def backend() -> str:
    return "graphc"
