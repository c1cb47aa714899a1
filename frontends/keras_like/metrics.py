"""Metrics ``f(y_true, y_pred)``: one value per sample, averaged over batches by the model.

``'accuracy'``/``'acc'`` is resolved as Keras does from the loss and the output
shape: binary for one output unit or a binary cross-entropy loss, sparse for a
sparse loss, categorical otherwise. A metric is named in ``History`` by the
string the user gave (``'acc'`` stays ``'acc'``) or by a callable's ``__name__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from frontends.keras_like import backend as K
from frontends.keras_like import losses
from frontends.keras_like._compat import lookup
from graphc.graph.basic import Variable


def binary_accuracy(y_true: Variable, y_pred: Variable, threshold: float = 0.5) -> Variable:
    predicted = K.cast(K.greater(y_pred, threshold), y_pred.dtype)
    return K.mean(K.cast(K.equal(y_true, predicted), K.floatx()), axis=-1)


def categorical_accuracy(y_true: Variable, y_pred: Variable) -> Variable:
    return K.cast(K.equal(K.argmax(y_true, axis=-1), K.argmax(y_pred, axis=-1)), K.floatx())


def sparse_categorical_accuracy(y_true: Variable, y_pred: Variable) -> Variable:
    labels = losses.sparse_labels(y_true, y_pred)
    return K.cast(K.equal(labels, K.argmax(y_pred, axis=-1)), K.floatx())


def top_k_categorical_accuracy(y_true: Variable, y_pred: Variable, k: int = 5) -> Variable:
    return K.cast(K.in_top_k(y_pred, K.argmax(y_true, axis=-1), k), K.floatx())


def sparse_top_k_categorical_accuracy(y_true: Variable, y_pred: Variable, k: int = 5) -> Variable:
    return K.cast(K.in_top_k(y_pred, losses.sparse_labels(y_true, y_pred), k), K.floatx())


def cosine_similarity(y_true: Variable, y_pred: Variable) -> Variable:
    return -losses.cosine_proximity(y_true, y_pred)


mse = MSE = mean_squared_error = losses.mean_squared_error
mae = MAE = mean_absolute_error = losses.mean_absolute_error
mape = MAPE = mean_absolute_percentage_error = losses.mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error = losses.mean_squared_logarithmic_error
binary_crossentropy = losses.binary_crossentropy
categorical_crossentropy = losses.categorical_crossentropy
sparse_categorical_crossentropy = losses.sparse_categorical_crossentropy
hinge, squared_hinge = losses.hinge, losses.squared_hinge
kullback_leibler_divergence = losses.kullback_leibler_divergence
poisson = losses.poisson
cosine_proximity = losses.cosine_proximity
logcosh = losses.logcosh

_TABLE: dict[str, Callable[..., Variable]] = {
    **{name: fn for name, fn in losses._TABLE.items()},
    "binary_accuracy": binary_accuracy, "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
    "cosine_similarity": cosine_similarity,
}
_ACCURACY_NAMES = ("accuracy", "acc")
_CROSSENTROPY_NAMES = ("crossentropy", "ce")


def _loss_fn(loss: Any) -> Any:
    if isinstance(loss, str):
        loss = losses.get(loss)
    return getattr(type(loss), "fn", loss) if isinstance(loss, losses.Loss) else loss


def resolve(identifier: Any, loss: Any, output_shape: tuple) -> tuple[str, Callable[..., Variable]]:
    """``(history name, per-sample function)`` for a metric given as a name or callable."""
    if isinstance(identifier, str):
        name = identifier
        if identifier in _ACCURACY_NAMES or identifier in _CROSSENTROPY_NAMES:
            return name, _by_loss(identifier, _loss_fn(loss), output_shape)
        return name, get(identifier)
    if callable(identifier):
        return getattr(identifier, "name", None) or getattr(identifier, "__name__", "metric"), identifier
    raise ValueError(f"could not interpret metric {identifier!r}")


def _by_loss(identifier: str, loss_fn: Any, output_shape: tuple) -> Callable[..., Variable]:
    binary = output_shape[-1] == 1 or loss_fn is losses.binary_crossentropy
    sparse = loss_fn is losses.sparse_categorical_crossentropy
    if identifier in _ACCURACY_NAMES:
        if binary:
            return binary_accuracy
        return sparse_categorical_accuracy if sparse else categorical_accuracy
    if binary:
        return losses.binary_crossentropy
    return losses.sparse_categorical_crossentropy if sparse else losses.categorical_crossentropy


def get(identifier: Any) -> Callable[..., Variable]:
    found = lookup(identifier, _TABLE, "metric")
    if not callable(found):
        raise ValueError(f"could not interpret metric {identifier!r}")
    return found


def is_sparse(fn: Any) -> bool:
    return fn in (sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                  losses.sparse_categorical_crossentropy)

