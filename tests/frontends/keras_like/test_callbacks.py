"""Callbacks: early stopping, learning-rate schedules, logging, checkpoints, NaN guard."""

import csv

import numpy as np
import pytest

from frontends.keras_like import callbacks, optimizers
from frontends.keras_like.layers import Dense
from frontends.keras_like.models import Sequential

rng = np.random.default_rng(2)
X = rng.normal(size=(40, 3))
Y = X @ rng.normal(size=(3, 1)) + 0.1


def _model(lr=0.05):
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizers.SGD(lr=lr), "mse", metrics=["mae"])
    return model


def test_early_stopping_stops_when_the_monitor_stalls():
    model = _model(lr=0.0)  # nothing improves after the first epoch
    stopper = callbacks.EarlyStopping(monitor="val_loss", patience=2)
    history = model.fit(X, Y, epochs=20, validation_split=0.25, verbose=0, callbacks=[stopper])
    assert history.epoch == [0, 1, 2]
    assert stopper.stopped_epoch == 2 and model.stop_training


def test_early_stopping_keeps_going_while_improving_and_min_delta():
    model = _model(lr=0.05)
    history = model.fit(X, Y, epochs=6, verbose=0,
                        callbacks=[callbacks.EarlyStopping(monitor="loss", patience=1)])
    assert len(history.epoch) == 6
    model = _model(lr=0.05)
    history = model.fit(X, Y, epochs=6, verbose=0,
                        callbacks=[callbacks.EarlyStopping(monitor="loss", min_delta=100.0)])
    assert len(history.epoch) == 2


def test_early_stopping_mode_baseline_and_restore_best_weights(capsys):
    model = _model(lr=0.05)
    best = {}

    def remember(epoch, logs):
        best.setdefault("loss", np.inf)
        if logs["loss"] < best["loss"]:
            best.update(loss=logs["loss"], weights=model.get_weights())

    # "maximize the loss": every epoch after the first is worse, so it stops and restores epoch 1
    stopper = callbacks.EarlyStopping(monitor="loss", mode="max", patience=2,
                                      restore_best_weights=True, verbose=1)
    first = {}
    model.fit(X, Y, epochs=10, verbose=0, callbacks=[
        callbacks.LambdaCallback(on_epoch_end=lambda e, logs: first.setdefault("w", model.get_weights())),
        stopper])
    assert stopper.stopped_epoch == 2
    for got, expected in zip(model.get_weights(), first["w"]):
        np.testing.assert_array_equal(got, expected)
    assert "Epoch 00003: early stopping" in capsys.readouterr().out
    # a baseline that is never reached stops after `patience` epochs
    stopper = callbacks.EarlyStopping(monitor="loss", baseline=-1.0, patience=3)
    assert len(_model().fit(X, Y, epochs=10, verbose=0, callbacks=[stopper]).epoch) == 3
    assert callbacks.EarlyStopping(monitor="val_acc").monitor_op is np.greater


def test_missing_monitor_warns():
    with pytest.warns(RuntimeWarning, match="not available"):
        _model().fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])


def test_learning_rate_scheduler_sets_the_shared_learning_rate():
    seen = []
    model = _model()
    probe = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(float(model.optimizer.lr.get_value())))
    history = model.fit(X, Y, epochs=3, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)), probe])
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.1 / 3], rtol=1e-6)
    np.testing.assert_allclose(history.history["lr"], seen, rtol=1e-6)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)])
    assert float(model.optimizer.lr.get_value()) == pytest.approx(0.1 / 12, rel=1e-6)


def test_learning_rate_zero_freezes_weights_without_recompiling():
    model = _model()
    model.fit(X, Y, epochs=1, verbose=0)
    step = model._train_fn
    before = model.get_weights()
    model.fit(X, Y, epochs=2, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.0)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model._train_fn is step


def test_reduce_lr_on_plateau():
    model = _model(lr=0.05)
    reducer = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=100.0,
                                          min_lr=0.01, verbose=0)
    history = model.fit(X, Y, epochs=5, verbose=0, callbacks=[reducer])
    np.testing.assert_allclose(history.history["lr"], [0.05, 0.05, 0.025, 0.0125, 0.01], rtol=1e-6)
    assert float(model.optimizer.lr.get_value()) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_terminate_on_nan(capsys):
    model = _model()
    x = X.copy()
    x[12] = np.nan
    history = model.fit(x, Y, epochs=5, batch_size=8, shuffle=False, verbose=0,
                        callbacks=[callbacks.TerminateOnNaN()])
    assert len(history.epoch) == 1
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    _model().fit(X, Y, epochs=3, verbose=0, validation_split=0.25,
                 callbacks=[callbacks.CSVLogger(str(path))])
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert set(rows[0]) == {"epoch", "loss", "mae", "val_loss", "val_mae"}
    _model().fit(X, Y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(str(path), append=True)])
    lines = open(path).read().splitlines()
    assert len(lines) == 6 and lines[4].startswith("0,")


def test_lambda_callback_and_hook_order():
    events = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: events.append(f"epoch_begin {epoch}"),
        on_batch_end=lambda batch, logs: events.append(f"batch_end {batch} {logs['size']}"),
        on_epoch_end=lambda epoch, logs: events.append(f"epoch_end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: events.append("train_end"))
    _model().fit(X[:10], Y[:10], batch_size=6, epochs=2, verbose=0, callbacks=[cb])
    assert events == [
        "train_begin",
        "epoch_begin 0", "batch_end 0 6", "batch_end 1 4", "epoch_end 0 ['loss', 'mae']",
        "epoch_begin 1", "batch_end 0 6", "batch_end 1 4", "epoch_end 1 ['loss', 'mae']",
        "train_end"]
    with pytest.raises(TypeError):
        callbacks.LambdaCallback(on_epoch_ended=print)


def test_custom_callback_subclass_sees_model_and_params():
    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.params_seen = dict(self.params)
            self.model_seen = self.model

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    rec = Recorder()
    model = _model()
    history = model.fit(X, Y, epochs=5, batch_size=10, verbose=0, callbacks=[rec])
    assert rec.model_seen is model
    assert rec.params_seen["steps"] == 4 and rec.params_seen["metrics"] == ["loss", "mae"]
    assert history.epoch == [0, 1]


def test_model_checkpoint_formats_path_and_keeps_the_best(tmp_path, capsys):
    model = _model()
    pattern = str(tmp_path / "weights.{epoch:02d}-{val_loss:.2f}")
    model.fit(X, Y, epochs=3, validation_split=0.25, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(pattern, save_weights_only=True)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and names[0].startswith("weights.01-")
    best_path = tmp_path / "TestModel-progress"
    model = _model(lr=0.05)
    model.fit(X, Y, epochs=4, validation_split=0.25, verbose=0, callbacks=[
        callbacks.ModelCheckpoint(str(best_path), monitor="val_loss", verbose=True, save_best_only=True)])
    assert "val_loss improved from inf" in capsys.readouterr().out
    model.load_weights(str(best_path))  # the seed tutorial's pattern
