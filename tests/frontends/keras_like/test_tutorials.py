"""The tutorials' examples end to end (with only the import lines changed)."""

import numpy as np
import pytest

from frontends.keras_like import callbacks, optimizers
from frontends.keras_like.layers import Activation, Dense, Dropout
from frontends.keras_like.models import Sequential
from frontends.keras_like.utils import np_utils, to_categorical


def _toy(seed=0):
    rng = np.random.default_rng(seed)
    x_train = rng.random((10000, 10))
    z = np.sum(np.square(x_train), axis=1)
    return x_train, z


def test_regression_toy_sin_of_sum_of_squares():
    x_train, z = _toy()
    y_train = np.sin(z)
    model = Sequential([
        Dense(20, activation="relu", input_dim=10),
        Dense(30, activation="relu"),
        Dense(1),
    ])
    optimizer = optimizers.SGD(lr=0.01)
    model.compile(optimizer=optimizer, loss="mse")
    hist = model.fit(x_train, y_train, batch_size=32, epochs=10, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < losses[0]
    assert losses[-1] < 0.25 * y_train.var()
    pred = model.predict(x_train)
    assert pred.shape == (10000, 1)
    mse = np.mean((pred[:, 0] - y_train) ** 2)
    assert mse < 0.25 * y_train.var()
    assert model.evaluate(x_train, y_train, verbose=0) == pytest.approx(mse, rel=1e-4)


def test_classification_toy_with_validation_split():
    x_train, z = _toy(1)
    y_train = (np.sin(z) >= 0).astype(np.int32)
    model = Sequential([
        Dense(100, activation="relu", input_dim=10),
        Dense(100, activation="relu"),
        Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=optimizers.Adam(), loss="binary_crossentropy", metrics=["acc"])
    good_enough = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", logs["val_acc"] >= 0.9))
    history = model.fit(x_train, y_train, batch_size=32, epochs=25, validation_split=0.2,
                        callbacks=[good_enough], verbose=0)
    assert sorted(history.history) == ["acc", "loss", "val_acc", "val_loss"]
    assert max(history.history["val_acc"]) >= 0.85
    assert len(history.epoch) <= 25


def test_digits_softmax_test_accuracy():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = digits.data / 16.0
    y = to_categorical(digits.target, 10)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]
    model = Sequential([Dense(64, input_dim=64), Activation("relu"), Dropout(0.1), Dense(10),
                        Activation("softmax")])
    model.compile(loss="categorical_crossentropy",
                  optimizer=optimizers.SGD(lr=0.1, momentum=0.9, nesterov=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=15, verbose=0,
              callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=3)],
              validation_split=0.1)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc >= 0.95
    classes = model.predict_classes(x_test)
    assert np.mean(classes == y_test.argmax(1)) == pytest.approx(acc, abs=1e-6)


def test_iris_with_to_categorical():
    datasets = pytest.importorskip("sklearn.datasets")
    iris = datasets.load_iris()
    x = iris.data.astype(float)
    x = (x - x.mean(0)) / x.std(0)
    dummy_y = np_utils.to_categorical(iris.target)
    assert dummy_y.shape == (150, 3)
    model = Sequential()
    model.add(Dense(8, input_dim=4, activation="relu"))
    model.add(Dense(3, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer=optimizers.Adam(lr=0.02),
                  metrics=["accuracy"])
    model.fit(x, dummy_y, nb_epoch=40, batch_size=10, verbose=0)
    loss, acc = model.evaluate(x, dummy_y, verbose=0)
    assert acc >= 0.9
    prediction = model.predict(np.array([[4.6, 3.6, 1.0, 0.2]]) - iris.data.mean(0) / iris.data.std(0))
    assert prediction.shape == (1, 3)
    np.testing.assert_allclose(prediction.sum(), 1.0, rtol=1e-5)


def test_sparse_categorical_with_flatten_like_fashion_mnist():
    from frontends.keras_like.layers import Flatten

    rng = np.random.default_rng(3)
    centers = rng.normal(size=(4, 6, 6))
    labels = rng.integers(0, 4, size=600)
    images = centers[labels] + 0.5 * rng.normal(size=(600, 6, 6))
    model = Sequential([Flatten(input_shape=(6, 6)), Dense(32, activation="relu"),
                        Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(images[:500], labels[:500], validation_data=(images[500:], labels[500:]),
                        batch_size=32, epochs=5, verbose=0)
    assert history.history["val_acc"][-1] >= 0.9
    predictions = np.argmax(model.predict(images[500:505]), axis=1)
    assert predictions.shape == (5,)
