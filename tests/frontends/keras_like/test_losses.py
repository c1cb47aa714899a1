"""Every loss and metric against a NumPy transcription of its Keras definition."""

import numpy as np
import pytest

import graphc.tensor as T
from frontends.keras_like import losses, metrics
from tests.frontends.keras_like.helpers import evaluate

EPS = 1e-7
rng = np.random.default_rng(0)
P = rng.uniform(0.05, 0.95, size=(6, 4))          # probabilities-like predictions
Y01 = (rng.uniform(size=(6, 4)) > 0.5).astype(float)
YREG = rng.normal(size=(6, 4))
PREG = rng.normal(size=(6, 4))
YPM = np.where(Y01 > 0, 1.0, -1.0)                # hinge labels in {-1, 1}
LABELS = np.array([0, 3, 1, 2, 3, 0])
ONEHOT = np.eye(4)[LABELS]
PSOFT = np.exp(PREG) / np.exp(PREG).sum(-1, keepdims=True)


def _np_xent(t, p):
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(p)).sum(-1)


def _l2n(x):
    return x / np.sqrt(np.maximum((x ** 2).sum(-1, keepdims=True), 1e-12))


CASES = {
    "mse": (YREG, PREG, lambda t, p: ((p - t) ** 2).mean(-1)),
    "mean_squared_error": (YREG, PREG, lambda t, p: ((p - t) ** 2).mean(-1)),
    "mae": (YREG, PREG, lambda t, p: np.abs(p - t).mean(-1)),
    "mape": (YREG, PREG, lambda t, p: 100 * np.abs((t - p) / np.clip(np.abs(t), EPS, None)).mean(-1)),
    "msle": (np.abs(YREG), np.abs(PREG), lambda t, p: (
        (np.log(np.clip(p, EPS, None) + 1) - np.log(np.clip(t, EPS, None) + 1)) ** 2).mean(-1)),
    "hinge": (YPM, PREG, lambda t, p: np.maximum(1 - t * p, 0).mean(-1)),
    "squared_hinge": (YPM, PREG, lambda t, p: (np.maximum(1 - t * p, 0) ** 2).mean(-1)),
    "categorical_hinge": (ONEHOT, PREG, lambda t, p: np.maximum(
        ((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0)),
    "binary_crossentropy": (Y01, P, lambda t, p: -(
        t * np.log(np.clip(p, EPS, 1 - EPS)) + (1 - t) * np.log(1 - np.clip(p, EPS, 1 - EPS))).mean(-1)),
    "categorical_crossentropy": (ONEHOT, PSOFT, _np_xent),
    "kullback_leibler_divergence": (PSOFT[::-1].copy(), PSOFT, lambda t, p: (
        np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1))).sum(-1)),
    "kld": (PSOFT[::-1].copy(), PSOFT, lambda t, p: (
        np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1))).sum(-1)),
    "poisson": (np.abs(YREG), P, lambda t, p: (p - t * np.log(p + EPS)).mean(-1)),
    "cosine_proximity": (YREG, PREG, lambda t, p: -(_l2n(t) * _l2n(p)).sum(-1)),
    "cosine_similarity": (YREG, PREG, lambda t, p: -(_l2n(t) * _l2n(p)).sum(-1)),
    "logcosh": (YREG, PREG, lambda t, p: np.log(np.cosh(p - t)).mean(-1)),
    "huber": (YREG, 2 * PREG, lambda t, p: np.where(
        np.abs(p - t) <= 1, 0.5 * (p - t) ** 2, np.abs(p - t) - 0.5).mean(-1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_numpy(name):
    y_true, y_pred, reference = CASES[name]
    got = evaluate(losses.get(name), y_true, y_pred)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, reference(y_true, y_pred), rtol=1e-6, atol=1e-9)


def test_sparse_categorical_crossentropy_equals_dense_on_one_hot():
    got = evaluate(losses.sparse_categorical_crossentropy, LABELS, PSOFT)
    np.testing.assert_allclose(got, _np_xent(ONEHOT, PSOFT), rtol=1e-6)
    # a trailing axis of length 1 on the labels is accepted, as in Keras
    got2 = evaluate(losses.sparse_categorical_crossentropy, LABELS[:, None], PSOFT)
    np.testing.assert_allclose(got2, got)


def test_from_logits_matches_probabilities():
    a = evaluate(lambda t, z: losses.categorical_crossentropy(t, z, from_logits=True), ONEHOT, PREG)
    np.testing.assert_allclose(a, _np_xent(ONEHOT, PSOFT), rtol=1e-6)
    z = rng.normal(size=(6, 1)) * 3
    t = (rng.uniform(size=(6, 1)) > 0.5).astype(float)
    b = evaluate(lambda t, z: losses.binary_crossentropy(t, z, from_logits=True), t, z)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(b, -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(-1), rtol=1e-6)


def test_loss_objects_and_short_names():
    assert losses.get("MSE") is losses.mean_squared_error
    obj = losses.get("CategoricalCrossentropy")
    assert obj.name == "categorical_crossentropy"
    np.testing.assert_allclose(evaluate(obj, ONEHOT, PSOFT), _np_xent(ONEHOT, PSOFT), rtol=1e-6)
    assert losses.is_sparse(losses.SparseCategoricalCrossentropy())
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("no_such_loss")


def test_custom_callable_loss_is_used_as_is():
    def my_loss(y_true, y_pred):
        return T.mean(abs(y_pred - y_true) ** 3, axis=-1)

    assert losses.get(my_loss) is my_loss


# -- metrics ------------------------------------------------------------------------------
def test_binary_accuracy():
    got = evaluate(metrics.binary_accuracy, Y01, P)
    np.testing.assert_allclose(got, (Y01 == (P > 0.5)).mean(-1))


def test_categorical_and_sparse_accuracy():
    got = evaluate(metrics.categorical_accuracy, ONEHOT, PSOFT)
    np.testing.assert_array_equal(got, (PSOFT.argmax(-1) == LABELS).astype(float))
    got_sparse = evaluate(metrics.sparse_categorical_accuracy, LABELS, PSOFT)
    np.testing.assert_array_equal(got_sparse, got)


def test_top_k_accuracy():
    ranks = (-PSOFT).argsort(-1)
    for k in (1, 2, 3):
        expected = np.array([LABELS[i] in ranks[i, :k] for i in range(6)], dtype=float)
        got = evaluate(lambda t, p, k=k: metrics.top_k_categorical_accuracy(t, p, k=k), ONEHOT, PSOFT)
        np.testing.assert_array_equal(got, expected)
        got_sparse = evaluate(lambda t, p, k=k: metrics.sparse_top_k_categorical_accuracy(t, p, k=k),
                              LABELS, PSOFT)
        np.testing.assert_array_equal(got_sparse, expected)


def test_regression_metrics_are_the_losses():
    np.testing.assert_allclose(evaluate(metrics.get("mae"), YREG, PREG), np.abs(PREG - YREG).mean(-1))
    np.testing.assert_allclose(evaluate(metrics.get("mse"), YREG, PREG), ((PREG - YREG) ** 2).mean(-1))


@pytest.mark.parametrize("spec, loss, shape, expected", [
    ("accuracy", "binary_crossentropy", (None, 1), metrics.binary_accuracy),
    ("acc", "mse", (None, 1), metrics.binary_accuracy),
    ("acc", "sparse_categorical_crossentropy", (None, 3), metrics.sparse_categorical_accuracy),
    ("acc", "categorical_crossentropy", (None, 10), metrics.categorical_accuracy),
    ("accuracy", "sparse_categorical_crossentropy", (None, 10), metrics.sparse_categorical_accuracy),
    ("accuracy", losses.SparseCategoricalCrossentropy(), (None, 10),
     metrics.sparse_categorical_accuracy),
    ("accuracy", "binary_crossentropy", (None, 5), metrics.binary_accuracy),
])
def test_accuracy_is_resolved_like_keras(spec, loss, shape, expected):
    name, fn = metrics.resolve(spec, loss, shape)
    assert name == spec
    assert fn is expected


def test_metric_names():
    def my_metric(y_true, y_pred):
        return y_pred

    assert metrics.resolve(my_metric, "mse", (None, 1))[0] == "my_metric"
    assert metrics.resolve("mae", "mse", (None, 1))[0] == "mae"


def test_cosine_similarity_metric_is_minus_the_loss():
    got = evaluate(metrics.cosine_similarity, YREG, PREG)
    np.testing.assert_allclose(got, (_l2n(YREG) * _l2n(PREG)).sum(-1), rtol=1e-6)
