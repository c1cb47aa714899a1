"""Layers: values against NumPy, training-only behaviour, weights, Keras 1 argument names."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from frontends.keras_like import activations, constraints, regularizers
from frontends.keras_like.layers import (
    ELU,
    Activation,
    AlphaDropout,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    LeakyReLU,
    PReLU,
    Reshape,
    ThresholdedReLU,
)
from frontends.keras_like.models import Sequential
from tests.frontends.keras_like.helpers import evaluate

rng = np.random.default_rng(5)
X = rng.normal(size=(8, 5)).astype("float32")


def _apply(layer, x, training=False):
    sym = T.tensor("float32", shape=(None, *x.shape[1:]))
    out = layer(sym, training=training)
    return graphc.function([sym], out)(x)


def test_dense_values_and_shapes():
    layer = Dense(3, activation="tanh")
    out = _apply(layer, X)
    W, b = layer.get_weights()
    assert W.shape == (5, 3) and b.shape == (3,)
    np.testing.assert_allclose(out, np.tanh(X @ W + b), rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 18
    assert layer.output_shape == (None, 3)
    no_bias = Dense(2, use_bias=False, kernel_initializer="ones")
    np.testing.assert_allclose(_apply(no_bias, X), np.repeat(X.sum(1, keepdims=True), 2, 1), rtol=1e-5)
    assert len(no_bias.weights) == 1


def test_dense_on_3d_inputs_uses_last_axis():
    x = rng.normal(size=(2, 4, 5)).astype("float32")
    layer = Dense(3)
    out = _apply(layer, x)
    W, b = layer.get_weights()
    assert out.shape == (2, 4, 3)
    np.testing.assert_allclose(out, x @ W + b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, reference", [
    ("relu", lambda x: np.maximum(x, 0)),
    ("tanh", np.tanh),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("hard_sigmoid", lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    ("softplus", lambda x: np.log1p(np.exp(x))),
    ("softsign", lambda x: x / (1 + np.abs(x))),
    ("linear", lambda x: x),
    ("elu", lambda x: np.where(x > 0, x, np.expm1(x))),
    ("selu", lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x))),
    ("exponential", np.exp),
    ("swish", lambda x: x / (1 + np.exp(-x))),
    ("gelu", lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2)))),
    ("softmax", lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
])
def test_activations_by_name(name, reference):
    x = rng.normal(size=(4, 6)) * 2
    np.testing.assert_allclose(evaluate(activations.get(name), x), reference(x), rtol=1e-6, atol=1e-9)
    out = _apply(Activation(name), x.astype("float32"))
    np.testing.assert_allclose(out, reference(x), rtol=1e-4, atol=1e-5)


def test_activation_callable_and_errors():
    assert activations.get(None) is activations.linear
    assert activations.get(activations.tanh) is activations.tanh
    with pytest.raises(ValueError, match="unknown activation"):
        activations.get("rleu")


def test_advanced_activation_layers():
    x = rng.normal(size=(6, 4)).astype("float32")
    np.testing.assert_allclose(_apply(LeakyReLU(), x), np.where(x > 0, x, 0.3 * x), rtol=1e-6)
    np.testing.assert_allclose(_apply(LeakyReLU(alpha=0.1), x), np.where(x > 0, x, 0.1 * x), rtol=1e-6)
    np.testing.assert_allclose(_apply(ELU(alpha=0.5), x), np.where(x > 0, x, 0.5 * np.expm1(x)),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_apply(ThresholdedReLU(theta=0.5), x), np.where(x > 0.5, x, 0))
    prelu = PReLU(alpha_initializer="ones")
    np.testing.assert_allclose(_apply(prelu, x), x, rtol=1e-6)  # slope 1 everywhere
    assert prelu.get_weights()[0].shape == (4,)
    shared = PReLU(shared_axes=[1])
    _apply(shared, x)
    assert shared.get_weights()[0].shape == (1,)


def test_prelu_slope_is_learned():
    model = Sequential([Dense(4, input_dim=3, kernel_initializer="identity"), PReLU()])
    model.compile("sgd", "mse")
    before = model.layers[1].get_weights()[0].copy()
    np.testing.assert_array_equal(before, 0)  # Keras' default: zeros
    x = -np.abs(rng.normal(size=(32, 3)))
    model.fit(x, np.concatenate([x, x[:, :1]], axis=1) * 0.5, epochs=2, verbose=0)
    assert np.all(model.layers[1].get_weights()[0][:3] > 0)


def test_dropout_inactive_at_inference_and_scaled_in_training():
    layer = Dropout(0.5, seed=3)
    x = np.ones((200, 50), dtype="float32")
    np.testing.assert_array_equal(_apply(layer, x), x)
    out = _apply(layer, x, training=True)
    kept = out != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_allclose(out[kept], 2.0)  # survivors scaled by 1 / (1 - rate)


def test_dropout_in_model_only_while_training():
    model = Sequential([Dense(50, input_dim=10, kernel_initializer="ones"), Dropout(0.5)])
    model.compile("sgd", "mse")
    x = np.ones((4, 10))
    a, b = model.predict(x), model.predict(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, 10.0)
    # the training step sees dropped units: its loss against the clean output is not zero
    loss = model.train_on_batch(x, a)
    assert loss > 1.0
    # and each call draws a new mask (the random stream advances)
    model.optimizer.lr = 0.0
    assert model.train_on_batch(x, a) != loss


def test_noise_layers_training_only():
    x = np.zeros((100, 40), dtype="float32")
    g = GaussianNoise(0.5, seed=1)
    np.testing.assert_array_equal(_apply(g, x), x)
    noisy = _apply(g, x, training=True)
    assert abs(noisy.std() - 0.5) < 0.02
    gd = GaussianDropout(0.2, seed=1)
    ones = np.ones_like(x)
    np.testing.assert_array_equal(_apply(gd, ones), ones)
    assert abs(_apply(gd, ones, training=True).std() - np.sqrt(0.2 / 0.8)) < 0.02
    ad = AlphaDropout(0.3, seed=2)
    z = rng.normal(size=(200, 100)).astype("float32")
    np.testing.assert_array_equal(_apply(ad, z), z)
    out = _apply(ad, z, training=True)
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1.0) < 0.05  # self-normalizing


def test_batchnorm_statistics_and_moving_averages():
    model = Sequential([BatchNormalization(input_shape=(3,), momentum=0.5)])
    model.compile("sgd", "mse")
    x = rng.normal(loc=[1.0, -2.0, 5.0], scale=[1.0, 2.0, 0.5], size=(64, 3)).astype("float32")
    bn = model.layers[0]
    # inference with the initial moving averages (0, 1) is nearly the identity
    np.testing.assert_allclose(model.predict(x), x / np.sqrt(1 + 1e-3), rtol=1e-5)
    model.optimizer.lr = 0.0  # only the moving averages change
    model.train_on_batch(x, np.zeros_like(x))
    gamma, beta, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, 0.5 * 0 + 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(mv, 0.5 * 1 + 0.5 * x.var(0), rtol=1e-5)
    for _ in range(20):
        model.train_on_batch(x, np.zeros_like(x))
    _, _, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(mv, x.var(0), rtol=1e-4)
    expected = (x - mm) / np.sqrt(mv + 1e-3) * gamma + beta
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)
    # training mode normalizes with the batch statistics
    out = _apply(bn, x, training=True)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(0), x.var(0) / (x.var(0) + 1e-3), rtol=1e-4)


def test_batchnorm_param_counts_and_axis():
    model = Sequential([Dense(64, input_dim=10), BatchNormalization()])
    assert model.layers[1].count_params() == 256
    assert len(model.non_trainable_weights) == 2
    assert sum(w.get_value().size for w in model.trainable_weights) == 704 + 128
    x = rng.normal(size=(4, 3, 5)).astype("float32")
    bn = BatchNormalization(axis=1)
    out = _apply(bn, x, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-5)
    assert bn.get_weights()[0].shape == (3,)


def test_flatten_and_reshape():
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_array_equal(_apply(Flatten(), x), x.reshape(2, 12))
    np.testing.assert_array_equal(_apply(Reshape((4, 3)), x), x.reshape(2, 4, 3))
    np.testing.assert_array_equal(_apply(Reshape((-1, 2)), x), x.reshape(2, 6, 2))
    model = Sequential([Reshape((2, 6), input_shape=(12,)), Flatten(), Dense(1)])
    assert model.layers[0].output_shape == (None, 2, 6)
    assert model.output_shape == (None, 1)
    with pytest.raises(ValueError):
        Sequential([Reshape((5, 5), input_shape=(12,))])


def test_regularizers_add_to_the_loss():
    x = rng.normal(size=(16, 4))
    y = rng.normal(size=(16, 2))
    model = Sequential([Dense(2, input_dim=4, kernel_regularizer=regularizers.l2(0.1),
                              bias_regularizer=regularizers.l1(0.2),
                              bias_initializer="ones")])
    model.compile("sgd", "mse")
    W, b = model.get_weights()
    mse = (((x @ W + b) - y) ** 2).mean()
    expected = mse + 0.1 * (W ** 2).sum() + 0.2 * np.abs(b).sum()
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.train_on_batch(x, y) == pytest.approx(expected, rel=1e-5)


def test_activity_regularizer_adds_to_the_loss():
    x = rng.normal(size=(16, 4))
    model = Sequential([Dense(2, input_dim=4, activity_regularizer=regularizers.l1_l2(0.01, 0.02))])
    model.compile("sgd", "mse")
    W, b = model.get_weights()
    out = x @ W + b
    expected = (out ** 2).mean() + 0.01 * np.abs(out).sum() + 0.02 * (out ** 2).sum()
    assert model.evaluate(x, np.zeros((16, 2)), batch_size=16, verbose=0) == pytest.approx(
        expected, rel=1e-5)


def test_constraints_are_applied_after_each_update():
    x = rng.normal(size=(64, 6)) * 5
    y = rng.normal(size=(64, 3)) * 5
    model = Sequential([Dense(3, input_dim=6, kernel_constraint=constraints.max_norm(0.5),
                              bias_constraint=constraints.non_neg())])
    model.compile(optimizers_sgd(), "mse")
    model.fit(x, y, epochs=2, verbose=0)
    W, b = model.get_weights()
    assert np.all(np.sqrt((W ** 2).sum(axis=0)) <= 0.5 + 1e-5)
    assert np.all(b >= 0)
    unit = Sequential([Dense(3, input_dim=6, kernel_constraint="unit_norm")])
    unit.compile(optimizers_sgd(), "mse")
    unit.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_allclose(np.sqrt((unit.get_weights()[0] ** 2).sum(0)), 1.0, rtol=1e-4)


def optimizers_sgd():
    from frontends.keras_like import optimizers

    return optimizers.SGD(lr=0.1)


def test_constraint_functions_values():
    w = rng.normal(size=(4, 3)) * 3
    norms = np.sqrt((w ** 2).sum(0, keepdims=True))
    eps = 1e-7
    np.testing.assert_allclose(evaluate(constraints.MaxNorm(1.0), w),
                               w * np.clip(norms, 0, 1.0) / (eps + norms), rtol=1e-6)
    np.testing.assert_allclose(evaluate(constraints.NonNeg(), w), np.where(w >= 0, w, 0))
    np.testing.assert_allclose(evaluate(constraints.UnitNorm(), w), w / (eps + norms), rtol=1e-6)
    got = evaluate(constraints.MinMaxNorm(0.5, 1.0, rate=0.5), w)
    desired = 0.5 * np.clip(norms, 0.5, 1.0) + 0.5 * norms
    np.testing.assert_allclose(got, w * desired / (eps + norms), rtol=1e-6)


def test_keras1_argument_names():
    from frontends.keras_like.constraints import maxnorm, nonneg
    from frontends.keras_like.regularizers import activity_l2, l2

    d = Dense(output_dim=3, init="zero", W_regularizer=l2(0.1), b_regularizer=l2(0.1),
              W_constraint=maxnorm(2), b_constraint=nonneg(), activity_regularizer=activity_l2(0.01),
              input_dim=4, bias=True)
    model = Sequential([d, Dropout(p=0.3), GaussianNoise(sigma=0.1),
                        BatchNormalization(beta_init="one", gamma_init="zero", mode=0),
                        PReLU(init="one")])
    assert d.units == 3 and d.batch_input_shape == (None, 4)
    np.testing.assert_array_equal(d.get_weights()[0], 0)
    assert model.layers[1].rate == 0.3 and model.layers[2].stddev == 0.1
    gamma, beta = model.layers[3].get_weights()[:2]
    np.testing.assert_array_equal(gamma, 0)
    np.testing.assert_array_equal(beta, 1)
    model.compile("sgd", "mse")
    history = model.fit(np.ones((8, 4)), np.ones((8, 3)), nb_epoch=2, verbose=0)
    assert len(history.history["loss"]) == 2
    with pytest.raises(TypeError, match="older name"):
        Dense(3, output_dim=3)
    with pytest.raises(TypeError, match="unexpected"):
        Dense(3, kernel_regulariser="l2")


def test_keras2_and_3_argument_names():
    d = Dense(units=2, kernel_initializer="he_normal", bias_initializer="ones",
              kernel_regularizer="l2", input_shape=(3,))
    _apply(d, np.ones((1, 3), "float32"))
    np.testing.assert_array_equal(d.get_weights()[1], 1)
    assert LeakyReLU(negative_slope=0.2).alpha == 0.2
    assert Dropout(rate=0.25).rate == 0.25


def test_set_weights_checks_shapes_and_weights_argument():
    d = Dense(2, input_dim=3, weights=[np.ones((3, 2)), np.full(2, 0.5)])
    Sequential([d])
    np.testing.assert_array_equal(d.get_weights()[1], 0.5)
    with pytest.raises(ValueError, match="shape"):
        d.set_weights([np.ones((2, 2)), np.ones(2)])
    with pytest.raises(ValueError, match="2 weights"):
        d.set_weights([np.ones((3, 2))])


def test_lambda_activity_regularization_layer_norm_softmax_relu_layers():
    from frontends.keras_like.layers import (
        ActivityRegularization,
        Lambda,
        LayerNormalization,
        ReLU,
        Softmax,
    )

    x = rng.normal(size=(4, 6)).astype("float32")
    lam = Lambda(lambda t: t[:, :3] * 2.0)
    np.testing.assert_allclose(_apply(lam, x), x[:, :3] * 2)
    assert lam.output_shape == (None, 3)
    np.testing.assert_allclose(_apply(Softmax(), x), np.exp(x) / np.exp(x).sum(1, keepdims=True),
                               rtol=1e-5)
    np.testing.assert_allclose(_apply(ReLU(max_value=0.5, negative_slope=0.1), x),
                               np.minimum(np.where(x > 0, x, 0.1 * x), 0.5), rtol=1e-6)
    ln = LayerNormalization()
    out = _apply(ln, x)
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    model = Sequential([Dense(3, input_dim=6), ActivityRegularization(l1=0.5)])
    model.compile("sgd", "mse")
    W, b = model.get_weights()
    h = x @ W + b
    assert model.evaluate(x, np.zeros((4, 3)), verbose=0) == pytest.approx(
        (h ** 2).mean() + 0.5 * np.abs(h).sum(), rel=1e-5)


@pytest.mark.parametrize("name, reference", [
    ("relu6", lambda x: np.clip(x, 0, 6)),
    ("silu", lambda x: x / (1 + np.exp(-x))),
    ("mish", lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    ("log_softmax", lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
])
def test_more_activations(name, reference):
    x = rng.normal(size=(3, 5)) * 4
    np.testing.assert_allclose(evaluate(activations.get(name), x), reference(x), rtol=1e-6, atol=1e-9)
    approx = evaluate(lambda t: activations.gelu(t, approximate=True), x)
    exact = evaluate(activations.gelu, x)
    np.testing.assert_allclose(approx, exact, atol=2e-3)
