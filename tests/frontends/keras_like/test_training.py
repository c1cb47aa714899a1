"""compile/fit/evaluate/predict: one compiled training step, weighting, data handling, output."""

import os
import signal

import numpy as np
import pytest

import graphc
from frontends.keras_like import callbacks, optimizers
from frontends.keras_like.layers import BatchNormalization, Dense, Dropout
from frontends.keras_like.models import Sequential

rng = np.random.default_rng(11)


def _linear_model(**dense_kwargs):
    model = Sequential([Dense(2, input_dim=3, **dense_kwargs)])
    return model


def test_one_compiled_training_step_holds_every_update():
    model = Sequential([Dense(8, input_dim=4, activation="relu"), BatchNormalization(),
                        Dropout(0.2), Dense(3, activation="softmax")])
    model.compile(optimizers.Adam(), "categorical_crossentropy", metrics=["acc"])
    x = rng.normal(size=(50, 4))
    y = np.eye(3)[rng.integers(0, 3, 50)]
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.2)
    train = model._train_fn
    assert isinstance(train, graphc.Function)
    updated = {id(v) for v in train.updated}
    # every trainable weight, both BatchNormalization moving averages, all optimizer state
    for var in model.weights + model.optimizer.weights:
        assert id(var) in updated, var.name
    # the dropout random stream advances inside the same step
    assert any(v.name and v.name.startswith("rng_state") for v in train.updated)
    # more epochs, other batch sizes, evaluate and predict: nothing is rebuilt
    test, predict = model._test_fn, model._make_predict_function()
    model.fit(x, y, batch_size=7, epochs=1, verbose=0)
    model.train_on_batch(x[:5], y[:5])
    model.evaluate(x, y, batch_size=13, verbose=0)
    model.predict(x, batch_size=50)
    assert model._train_fn is train and model._test_fn is test and model._predict_fn is predict


def test_sgd_step_equals_numpy_gradient_step(float64):
    x = rng.normal(size=(6, 3))
    y = rng.normal(size=(6, 2))
    model = _linear_model()
    model.compile(optimizers.SGD(lr=0.1), "mse")
    W, b = model.get_weights()
    loss = model.train_on_batch(x, y)
    err = x @ W + b - y
    assert loss == pytest.approx((err ** 2).mean(), rel=1e-12)
    grad_out = 2 * err / err.size
    W2, b2 = model.get_weights()
    np.testing.assert_allclose(W2, W - 0.1 * x.T @ grad_out, rtol=1e-12)
    np.testing.assert_allclose(b2, b - 0.1 * grad_out.sum(0), rtol=1e-12)


def test_fit_history_and_return_values():
    x = rng.normal(size=(40, 3))
    y = (x.sum(1) > 0).astype(int)
    model = Sequential([Dense(1, input_dim=3, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy", "mae"])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x[:10], y[:10]))
    assert isinstance(history, callbacks.History) and model.history is history
    assert history.epoch == [0, 1, 2]
    assert sorted(history.history) == ["accuracy", "loss", "mae", "val_accuracy", "val_loss", "val_mae"]
    assert all(len(v) == 3 for v in history.history.values())
    assert history.params["epochs"] == 3 and history.params["samples"] == 40
    assert model.metrics_names == ["loss", "accuracy", "mae"]
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 3
    # the epoch's validation values are what evaluate gives on that data
    np.testing.assert_allclose(model.evaluate(x[:10], y[:10], verbose=0)[0], history.history["val_loss"][-1],
                               rtol=1e-5)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == pytest.approx(result[1])
    assert isinstance(model.test_on_batch(x, y), list)
    plain = Sequential([Dense(1, input_dim=3)])
    plain.compile("sgd", "mse")
    assert isinstance(plain.evaluate(x, y, verbose=0), float)
    assert isinstance(plain.train_on_batch(x, y), float)


def test_evaluate_averages_over_samples_not_batches(float64):
    x = rng.normal(size=(10, 3))
    y = rng.normal(size=(10, 2))
    model = _linear_model()
    model.compile("sgd", "mse", metrics=["mae"])
    W, b = model.get_weights()
    err = x @ W + b - y
    loss, mae = model.evaluate(x, y, batch_size=4, verbose=0)
    assert loss == pytest.approx((err ** 2).mean(), rel=1e-12)
    assert mae == pytest.approx(np.abs(err).mean(), rel=1e-12)


def test_predict_classes_and_proba():
    x = rng.normal(size=(9, 3))
    soft = Sequential([Dense(4, input_dim=3, activation="softmax")])
    p = soft.predict(x, batch_size=4)
    assert p.shape == (9, 4) and p.dtype == np.float32
    np.testing.assert_array_equal(soft.predict_classes(x), p.argmax(-1))
    np.testing.assert_array_equal(soft.predict_proba(x), p)
    np.testing.assert_array_equal(soft.predict_on_batch(x), p)
    sig = Sequential([Dense(1, input_dim=3, activation="sigmoid")])
    np.testing.assert_array_equal(sig.predict_classes(x), (sig.predict(x) > 0.5).astype("int32"))
    assert sig.predict(np.zeros((0, 3))).shape == (0, 1)


def test_sample_and_class_weights(float64):
    x = rng.normal(size=(8, 3))
    y = np.eye(2)[[0, 1, 1, 0, 1, 0, 0, 1]]
    model = Sequential([Dense(2, input_dim=3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    p = model.predict(x)
    per_sample = -np.log(np.clip((p * y).sum(1), 1e-7, 1))
    sw = np.array([1, 0, 2, 1, 0, 1, 3, 1.0])
    assert model.test_on_batch(x, y, sample_weight=sw) == pytest.approx((per_sample * sw).mean())
    cw = {0: 1.0, 1: 5.0}
    expected = (per_sample * np.where(y[:, 1] == 1, 5.0, 1.0)).mean()
    assert model.train_on_batch(x, y, class_weight=cw) == pytest.approx(expected)
    # zero-weight samples do not move the weights
    model2 = Sequential([Dense(2, input_dim=3)])
    model2.compile("sgd", "mse")
    before = model2.get_weights()
    model2.fit(x, y, sample_weight=np.zeros(8), verbose=0)
    for a, b in zip(before, model2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_validation_split_takes_the_last_samples():
    x = np.arange(20, dtype=float).reshape(10, 2)
    y = np.arange(10, dtype=float)
    seen = []
    model = Sequential([Dense(1, input_dim=2)])
    model.compile("sgd", "mse")
    model.fit(x, y, validation_split=0.3, epochs=1, verbose=0, shuffle=False, batch_size=100,
              callbacks=[callbacks.LambdaCallback(
                  on_train_begin=lambda logs: seen.append(model.history.params))])
    assert seen[0]["samples"] == 7
    assert model.history.params["do_validation"]


def test_errors_users_can_act_on():
    model = Sequential([Dense(3, input_dim=4, activation="softmax")])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.ones((2, 4)), np.ones((2, 3)))
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match="input_shape"):
        model.fit(np.ones((2, 5)), np.ones((2, 3)), verbose=0)
    with pytest.raises(ValueError, match="to_categorical"):
        model.fit(np.ones((2, 4)), np.array([[1], [2]]), verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(np.ones((3, 4)), np.ones((2, 3)), verbose=0)
    with pytest.raises(TypeError, match="unexpected"):
        model.fit(np.ones((2, 4)), np.ones((2, 3)), epoch=3)
    with pytest.raises(ValueError, match="loss"):
        model.compile("sgd")


def test_fit_accepts_lists_ints_and_keras0_arguments():
    model = Sequential([Dense(1, input_dim=2, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["acc"])
    history = model.fit([[0, 1], [1, 0], [1, 1]], [0, 1, 1], nb_epoch=2, show_accuracy=True, verbose=0)
    assert len(history.history["acc"]) == 2


def test_progress_output_verbose_1_and_2(capsys):
    x = rng.normal(size=(50, 3))
    y = rng.normal(size=(50, 2))
    model = _linear_model()
    model.compile("sgd", "mse", metrics=["mae"])
    model.fit(x, y, batch_size=10, epochs=2, verbose=1, validation_split=0.2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Train on 40 samples, validate on 10 samples"
    assert out[1] == "Epoch 1/2"
    import re

    bar = re.compile(r"^40/40 \[=+\] - \d+s \d+(us|ms|s)/step - loss: [\d.e+-]+ - mae: [\d.e+-]+ "
                     r"- val_loss: [\d.e+-]+ - val_mae: [\d.e+-]+$")
    assert bar.match(out[2]), out[2]
    assert out[3] == "Epoch 2/2" and len(out) == 5
    model.fit(x, y, batch_size=10, epochs=1, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "Epoch 1/1"
    assert re.match(r"^ - \d+s - loss: [\d.e+-]+ - mae: [\d.e+-]+$", out[2]), out[2]
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    model.evaluate(x, y, verbose=1)
    assert re.match(r"^50/50 \[=+\] - \d+s", capsys.readouterr().out)


def test_keyboard_interrupt_keeps_the_last_finished_batch():
    x = rng.normal(size=(64, 3))
    y = rng.normal(size=(64, 2))
    model = _linear_model()
    model.compile(optimizers.SGD(lr=0.1), "mse")
    snapshots = []

    def on_batch_end(batch, logs):
        snapshots.append(model.get_weights())
        if batch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as if the user pressed Ctrl-C here

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=5, verbose=0,
                  callbacks=[callbacks.LambdaCallback(on_batch_end=on_batch_end)])
    assert len(snapshots) == 3
    for got, expected in zip(model.get_weights(), snapshots[-1]):
        np.testing.assert_array_equal(got, expected)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # the model stays usable
    model.fit(x, y, epochs=1, verbose=0)


def test_shuffle_false_is_deterministic_and_shuffle_true_reorders():
    x = rng.normal(size=(30, 3))
    y = rng.normal(size=(30, 2))
    order = []
    capture = callbacks.LambdaCallback(on_batch_begin=lambda b, logs: order.append(b))

    def run(shuffle, seed=0):
        from frontends.keras_like import backend as K

        K.set_random_seed(seed)
        model = _linear_model(kernel_initializer="ones")
        model.compile(optimizers.SGD(lr=0.05), "mse")
        model.fit(x, y, batch_size=5, epochs=2, verbose=0, shuffle=shuffle, callbacks=[capture])
        return model.get_weights()[0]

    np.testing.assert_array_equal(run(False), run(False))
    assert not np.allclose(run(False), run(True))
    np.testing.assert_array_equal(run(True, 3), run(True, 3))
    assert order[:6] == [0, 1, 2, 3, 4, 5]
    run("batch")


def test_recompiling_keeps_the_optimizer_state():
    model = _linear_model()
    opt = optimizers.Adam()
    model.compile(opt, "mse")
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    model.fit(x, y, epochs=2, verbose=0)
    state = opt.get_weights()
    assert len(state) == 5  # iterations, m and v for kernel and bias
    model.compile(opt, "mae")
    model.fit(x, y, epochs=1, verbose=0)
    assert len(opt.weights) == 5 and int(opt.iterations.get_value()) == 3
