"""Callbacks: hooks called by ``fit`` (and ``evaluate``/``predict``) at each stage.

``History`` is always attached (``fit`` returns it), the progress logger when
``verbose`` is set. Epoch indices passed to the hooks are 0-based, as in Keras.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like.utils.generic_utils import Progbar


class Callback:
    """Base class; ``self.model`` and ``self.params`` are set before training starts."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict = {}
        self.validation_data = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    # Keras 2.1+ names of the batch hooks during fit.
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs)


class CallbackList:
    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_params(self, params: dict) -> None:
        for c in self.callbacks:
            c.set_params(params)

    def set_model(self, model: Any) -> None:
        for c in self.callbacks:
            c.set_model(model)

    def call(self, hook: str, *args: Any) -> None:
        for c in self.callbacks:
            getattr(c, hook)(*args)

    def __iter__(self):
        return iter(self.callbacks)


class BaseLogger(Callback):
    """Kept for imports: ``fit`` itself averages batch values into the epoch logs."""


class History(Callback):
    """Records the epoch logs: ``history.history['loss']``, ``['val_acc']``..."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a progress bar (``verbose=1``) or one line (``verbose=2``)."""

    def __init__(self, count_mode: str = "samples", stateful_metrics: Iterable[str] | None = None,
                 verbose: int = 1) -> None:
        super().__init__()
        self.use_steps = count_mode == "steps"
        self.verbose = verbose
        self.stateful_metrics = set(stateful_metrics or ())

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        print(f"Epoch {epoch + 1}/{self.epochs}")
        self.target = self.params["steps"] if self.use_steps else self.params["samples"]
        self.progbar = Progbar(self.target, verbose=self.verbose,
                               stateful_metrics=self.stateful_metrics)
        self.seen = 0

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.seen += 1 if self.use_steps else logs.get("size", 0)
        values = [(k, logs[k]) for k in self.params.get("metrics", []) if k in logs]
        if self.seen < self.target:
            self.progbar.update(self.seen, values)
        else:  # the final line waits for the epoch logs (validation values)
            self.progbar._record(self.seen, values)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        values = [(k, logs[k]) for k in self.params.get("metrics", []) if k in logs]
        self.progbar.stateful_metrics = {k for k, _ in values}
        self.progbar.update(self.target, values, force=True)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.monitor_op, self.min_delta = _monitor_op(mode, monitor, abs(min_delta))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_weights, self.best_epoch = 0, 0, None, 0
        self.best = self.baseline if self.baseline is not None else (
            np.inf if self.monitor_op is np.less else -np.inf)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = _monitored(logs, self.monitor, type(self).__name__)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.monitor_op(current - self.min_delta, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1:05d}: early stopping")


def _monitor_op(mode: str, monitor: str, min_delta: float) -> tuple[Callable, float]:
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"mode {mode!r} is unknown, falling back to 'auto'", stacklevel=3)
        mode = "auto"
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.startswith("fmeasure") or "auc" in monitor) else "min"
    return (np.greater, min_delta) if mode == "max" else (np.less, -min_delta)


def _monitored(logs: dict | None, monitor: str, who: str) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{who} conditioned on metric {monitor!r} which is not available; "
                      f"available metrics are: {','.join(logs or {})}", RuntimeWarning, stacklevel=3)
    return value


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch; ``filepath`` may hold ``{epoch:02d}``
    and ``{val_loss:.2f}``-style fields filled from the epoch logs."""

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 period: int = 1, save_freq: Any = "epoch") -> None:
        super().__init__()
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.period = period
        self.monitor_op, _ = _monitor_op(mode, monitor, 0.0)
        self.best = np.inf if self.monitor_op is np.less else -np.inf
        self.epochs_since_last_save = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.epochs_since_last_save += 1
        if self.epochs_since_last_save < self.period:
            return
        self.epochs_since_last_save = 0
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = _monitored(logs, self.monitor, type(self).__name__)
            if current is None:
                return
            if not self.monitor_op(current, self.best):
                if self.verbose:
                    print(f"\nEpoch {epoch + 1:05d}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1:05d}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose:
            print(f"\nEpoch {epoch + 1:05d}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, **kwargs: Any) -> None:
        super().__init__()
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0")
        min_delta = kwargs.pop("epsilon", min_delta)  # Keras 2.0 name
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected arguments {sorted(kwargs)}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.monitor_op, self.min_delta = _monitor_op(mode, monitor, abs(min_delta))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.cooldown_counter = 0, 0
        self.best = np.inf if self.monitor_op is np.less else -np.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["lr"] = float(self.model.optimizer.learning_rate.get_value())
        current = _monitored(logs, self.monitor, type(self).__name__)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current - self.min_delta, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate.get_value())
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1:05d}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to ``schedule(epoch)`` or ``schedule(epoch, lr)``."""

    def __init__(self, schedule: Callable, verbose: int = 0) -> None:
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = float(self.model.optimizer.learning_rate.get_value())
        try:
            new_lr = self.schedule(epoch, lr)
        except TypeError:  # Keras 1/2.0 schedules take the epoch only
            new_lr = self.schedule(epoch)
        new_lr = float(K.get_value(new_lr))
        if not math.isfinite(new_lr):
            raise ValueError(f"the schedule returned a non-finite learning rate {new_lr}")
        self.model.optimizer.learning_rate = new_lr
        if self.verbose:
            print(f"\nEpoch {epoch + 1:05d}: LearningRateScheduler setting learning rate to {new_lr}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["lr"] = float(self.model.optimizer.learning_rate.get_value())


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` then the sorted log keys)."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None
        self.writer: Any = None
        self.file: io.TextIOBase | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        header_needed = not (self.append and os.path.exists(self.filename)
                             and os.path.getsize(self.filename) > 0)
        self.file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._header_needed = header_needed
        self.keys, self.writer = None, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            self.writer = csv.DictWriter(self.file, fieldnames=["epoch", *self.keys],
                                         delimiter=self.sep)
            if self._header_needed:
                self.writer.writeheader()
        row = {"epoch": epoch, **{k: _csv_value(logs.get(k, "NA")) for k in self.keys}}
        self.writer.writerow(row)
        self.file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _csv_value(v: Any) -> Any:
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    return v


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin: Callable | None = None, on_epoch_end: Callable | None = None,
                 on_batch_begin: Callable | None = None, on_batch_end: Callable | None = None,
                 on_train_begin: Callable | None = None, on_train_end: Callable | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_batch_begin": on_batch_begin, "on_batch_end": on_batch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end, **kwargs}
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            if fn is not None:
                setattr(self, name, fn)


class RemoteMonitor(Callback):
    """Not available (no network use); accepted so imports keep working."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        warnings.warn("RemoteMonitor does nothing in this frontend", stacklevel=2)


__all__ = [
    "Callback", "CallbackList", "BaseLogger", "History", "ProgbarLogger", "EarlyStopping",
    "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN", "CSVLogger",
    "LambdaCallback", "RemoteMonitor",
]
