"""Loss functions ``f(y_true, y_pred)``: one value per sample (reduced over the last axis).

Definitions follow Keras 2 (probabilities clipped to ``[eps, 1 - eps]`` before
logarithms). The model averages the per-sample values, weighted by sample
weights, into the scalar it minimizes. Any symbolic callable with this
signature is a loss too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like._compat import lookup, snake_case
from graphc.graph.basic import Variable


def sparse_labels(y_true: Variable, y_pred: Variable) -> Variable:
    """Integer class labels with one axis fewer than ``y_pred`` (accepts a trailing axis of 1)."""
    if y_true.ndim == y_pred.ndim:
        y_true = T.dimshuffle(y_true, *range(y_true.ndim - 1))
    if not y_true.type.is_discrete:
        y_true = T.cast(y_true, "int64")
    return y_true


def _logits_of(y_pred: Variable, activation: str, axis: int = -1) -> Variable | None:
    """The logits of a softmax (over ``axis``) or sigmoid output, else None.

    Keras (TensorFlow backend) computes the cross-entropy of such an output from its
    logits, skipping the clip to ``[eps, 1 - eps]``; so does this frontend, which makes the
    loss one stable op (``crossentropy_softmax``, ``sigmoid_binary_crossentropy``) with
    finite values and gradients for any logits.
    """
    node = y_pred.owner
    if node is None:
        return None
    if activation == "softmax" and isinstance(node.op, T.nnet.Softmax):
        return node.inputs[0] if node.op.axis == axis % y_pred.ndim else None
    if activation == "sigmoid" and getattr(getattr(node.op, "scalar_op", None), "name", None) == "sigmoid":
        return node.inputs[0]
    return None


def mean_squared_error(y_true: Variable, y_pred: Variable) -> Variable:
    return K.mean(K.square(y_pred - y_true), axis=-1)


def mean_absolute_error(y_true: Variable, y_pred: Variable) -> Variable:
    return K.mean(K.abs(y_pred - y_true), axis=-1)


def mean_absolute_percentage_error(y_true: Variable, y_pred: Variable) -> Variable:
    diff = K.abs((y_true - y_pred) / K.clip(K.abs(y_true), K.epsilon(), None))
    return 100.0 * K.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true: Variable, y_pred: Variable) -> Variable:
    first = K.log(K.clip(y_pred, K.epsilon(), None) + 1.0)
    second = K.log(K.clip(y_true, K.epsilon(), None) + 1.0)
    return K.mean(K.square(first - second), axis=-1)


def squared_hinge(y_true: Variable, y_pred: Variable) -> Variable:
    return K.mean(K.square(K.maximum(1.0 - y_true * y_pred, 0.0)), axis=-1)


def hinge(y_true: Variable, y_pred: Variable) -> Variable:
    """``mean(max(1 - y_true * y_pred, 0))``; labels are expected in {-1, 1}."""
    return K.mean(K.maximum(1.0 - y_true * y_pred, 0.0), axis=-1)


def categorical_hinge(y_true: Variable, y_pred: Variable) -> Variable:
    pos = K.sum(y_true * y_pred, axis=-1)
    neg = K.max((1.0 - y_true) * y_pred, axis=-1)
    return K.maximum(neg - pos + 1.0, 0.0)


def logcosh(y_true: Variable, y_pred: Variable) -> Variable:
    """``mean(log(cosh(y_pred - y_true)))``, written to stay finite for large errors."""
    x = y_pred - y_true
    return K.mean(x + K.softplus(-2.0 * x) - math.log(2.0), axis=-1)


def huber(y_true: Variable, y_pred: Variable, delta: float = 1.0) -> Variable:
    error = y_pred - y_true
    abs_error = K.abs(error)
    quadratic = 0.5 * K.square(error)
    linear = delta * abs_error - 0.5 * delta ** 2
    return K.mean(K.switch(K.less_equal(abs_error, delta), quadratic, linear), axis=-1)


def categorical_crossentropy(y_true: Variable, y_pred: Variable, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Variable:
    if label_smoothing:
        n = y_pred.type.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / n
    logits = y_pred if from_logits else _logits_of(y_pred, "softmax", axis)
    if logits is not None:
        # graphc's stabilize phase makes this one CrossentropySoftmax op (for matrices).
        return -K.sum(y_true * K.log_softmax(logits, axis=axis), axis=axis)
    y_pred = y_pred / K.sum(y_pred, axis=axis, keepdims=True)
    y_pred = K.clip(y_pred, K.epsilon(), 1.0 - K.epsilon())
    return -K.sum(y_true * K.log(y_pred), axis=axis)


def sparse_categorical_crossentropy(y_true: Variable, y_pred: Variable, from_logits: bool = False,
                                    axis: int = -1) -> Variable:
    labels = sparse_labels(y_true, y_pred)
    logits = y_pred if from_logits else _logits_of(y_pred, "softmax", axis)
    if logits is not None and logits.ndim == 2 and axis in (-1, 1):
        # One op from the labels (no one-hot matrix); a label out of range is an error, as
        # in Keras, instead of a silent zero row.
        return T.nnet.crossentropy_softmax(logits, labels)
    one_hot = K.one_hot(labels, y_pred.type.shape[-1])
    return categorical_crossentropy(one_hot, y_pred, from_logits=from_logits, axis=axis)


def binary_crossentropy(y_true: Variable, y_pred: Variable, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> Variable:
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    logits = y_pred if from_logits else _logits_of(y_pred, "sigmoid")
    if logits is not None:
        # softplus(x) - x * y: the logistic loss as one stable elementwise op.
        return K.mean(T.nnet.sigmoid_binary_crossentropy(logits, y_true), axis=-1)
    p = K.clip(y_pred, K.epsilon(), 1.0 - K.epsilon())
    return K.mean(-(y_true * K.log(p) + (1.0 - y_true) * K.log(1.0 - p)), axis=-1)


def kullback_leibler_divergence(y_true: Variable, y_pred: Variable) -> Variable:
    y_true = K.clip(y_true, K.epsilon(), 1.0)
    y_pred = K.clip(y_pred, K.epsilon(), 1.0)
    return K.sum(y_true * K.log(y_true / y_pred), axis=-1)


def poisson(y_true: Variable, y_pred: Variable) -> Variable:
    return K.mean(y_pred - y_true * K.log(y_pred + K.epsilon()), axis=-1)


def cosine_proximity(y_true: Variable, y_pred: Variable, axis: int = -1) -> Variable:
    """Minus the cosine similarity (so that minimizing it aligns the vectors)."""
    y_true = K.l2_normalize(y_true, axis=axis)
    y_pred = K.l2_normalize(y_pred, axis=axis)
    return -K.sum(y_true * y_pred, axis=axis)


cosine_similarity = cosine_proximity

# Short and long names, as in Keras.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence = kullback_leibler_divergence
log_cosh = logcosh
huber_loss = huber
cosine = cosine_proximity

_TABLE: dict[str, Callable[..., Variable]] = {
    "mean_squared_error": mean_squared_error, "mse": mse,
    "mean_absolute_error": mean_absolute_error, "mae": mae,
    "mean_absolute_percentage_error": mean_absolute_percentage_error, "mape": mape,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error, "msle": msle,
    "squared_hinge": squared_hinge, "hinge": hinge, "categorical_hinge": categorical_hinge,
    "logcosh": logcosh, "log_cosh": logcosh, "huber": huber, "huber_loss": huber,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy,
    "kullback_leibler_divergence": kullback_leibler_divergence, "kld": kld,
    "kl_divergence": kullback_leibler_divergence, "poisson": poisson,
    "cosine_proximity": cosine_proximity, "cosine_similarity": cosine_similarity,
    "cosine": cosine_proximity,
}


class Loss:
    """Keras 2/3 loss objects: ``losses.CategoricalCrossentropy(from_logits=True)``."""

    fn: Callable[..., Variable] = staticmethod(mean_squared_error)

    def __init__(self, reduction: str = "sum_over_batch_size", name: str | None = None,
                 **kwargs: Any) -> None:
        self.reduction = reduction
        self.kwargs = kwargs
        self.name = name or snake_case(type(self).__name__)
        self.__name__ = self.name

    def call(self, y_true: Variable, y_pred: Variable) -> Variable:
        return type(self).fn(y_true, y_pred, **self.kwargs)

    def __call__(self, y_true: Variable, y_pred: Variable) -> Variable:
        return self.call(y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, **self.kwargs}


def _loss_class(name: str, fn: Callable[..., Variable]) -> type:
    return type(name, (Loss,), {"fn": staticmethod(fn), "__doc__": fn.__doc__})


MeanSquaredError = _loss_class("MeanSquaredError", mean_squared_error)
MeanAbsoluteError = _loss_class("MeanAbsoluteError", mean_absolute_error)
MeanAbsolutePercentageError = _loss_class("MeanAbsolutePercentageError",
                                          mean_absolute_percentage_error)
MeanSquaredLogarithmicError = _loss_class("MeanSquaredLogarithmicError",
                                          mean_squared_logarithmic_error)
Hinge = _loss_class("Hinge", hinge)
SquaredHinge = _loss_class("SquaredHinge", squared_hinge)
CategoricalHinge = _loss_class("CategoricalHinge", categorical_hinge)
LogCosh = _loss_class("LogCosh", logcosh)
Huber = _loss_class("Huber", huber)
CategoricalCrossentropy = _loss_class("CategoricalCrossentropy", categorical_crossentropy)
SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy",
                                            sparse_categorical_crossentropy)
BinaryCrossentropy = _loss_class("BinaryCrossentropy", binary_crossentropy)
KLDivergence = _loss_class("KLDivergence", kullback_leibler_divergence)
Poisson = _loss_class("Poisson", poisson)
CosineSimilarity = _loss_class("CosineSimilarity", cosine_similarity)

_CLASSES = {c.__name__: c for c in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    Hinge, SquaredHinge, CategoricalHinge, LogCosh, Huber, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, BinaryCrossentropy, KLDivergence, Poisson, CosineSimilarity)}


def get(identifier: Any) -> Callable[..., Variable]:
    """A loss from a name (long or short), a loss object, a class or a callable."""
    if isinstance(identifier, dict) and "class_name" in identifier:
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _CLASSES:
        return _CLASSES[identifier]()
    found = lookup(identifier, _TABLE, "loss")
    if isinstance(found, type):
        found = found()
    if not callable(found):
        raise ValueError(f"could not interpret loss {identifier!r}")
    return found


def is_sparse(loss: Any) -> bool:
    """Whether the loss takes integer class labels (so the target is an int vector)."""
    fn = getattr(type(loss), "fn", None) if isinstance(loss, Loss) else loss
    return fn is sparse_categorical_crossentropy


def serialize(loss: Any) -> Any:
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", repr(loss))


deserialize = get
