"""The epoch/batch loop of ``fit``: shuffling, callbacks, log averaging, validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like import callbacks as cbks
from frontends.keras_like.engine import data
from frontends.keras_like.engine.interrupt import deferred_interrupt


def run_fit(model: Any, xs: np.ndarray, ys: np.ndarray, sw: np.ndarray, val: tuple | None, *,
            batch_size: int, epochs: int, verbose: int, callbacks: Any, shuffle: Any,
            initial_epoch: int, val_batch_size: int | None, validation_freq: int) -> cbks.History:
    train_fn = model._make_train_function()
    if val is not None:
        model._make_test_function()
    names = model.metrics_names
    n = len(xs)
    steps = (n + batch_size - 1) // batch_size
    callback_metrics = list(names) + ([f"val_{k}" for k in names] if val is not None else [])

    model.history = cbks.History()
    user = list(callbacks or [])
    all_callbacks = [cbks.BaseLogger(), *user, model.history]
    if verbose:
        all_callbacks.append(cbks.ProgbarLogger(count_mode="samples", verbose=verbose))
    callback_list = cbks.CallbackList(all_callbacks)
    callback_list.set_model(model)
    callback_list.set_params({
        "batch_size": batch_size, "epochs": epochs, "steps": steps, "samples": n,
        "verbose": verbose, "do_validation": val is not None, "metrics": callback_metrics,
    })
    for c in callback_list:
        c.validation_data = val
    if verbose:
        message = f"Train on {n} samples"
        print(message + (f", validate on {len(val[0])} samples" if val is not None else ""))

    model.stop_training = False
    callback_list.call("on_train_begin", {})
    epoch_logs: dict = {}
    with deferred_interrupt() as interrupt:
        for epoch in range(initial_epoch, epochs):
            callback_list.call("on_epoch_begin", epoch, {})
            order = _order(n, batch_size, shuffle)
            sums = np.zeros(len(names))
            seen = 0
            for batch_index, sl in enumerate(data.batch_slices(n, batch_size)):
                idx = order[sl]
                size = len(idx)
                batch_logs: dict = {"batch": batch_index, "size": size}
                callback_list.call("on_train_batch_begin", batch_index, batch_logs)
                outs = train_fn(xs[idx], ys[idx], sw[idx])
                values = [float(o) for o in outs]
                batch_logs.update(zip(names, values))
                sums += np.array(values) * size
                seen += size
                callback_list.call("on_train_batch_end", batch_index, batch_logs)
                interrupt.check()
                if model.stop_training:
                    break
            epoch_logs = dict(zip(names, (s / max(seen, 1) for s in sums)))
            epoch_logs = {k: float(v) for k, v in epoch_logs.items()}
            if val is not None and (epoch + 1) % max(validation_freq, 1) == 0:
                val_values = model._run_test_loop(*val, val_batch_size or batch_size)
                epoch_logs.update({f"val_{k}": float(v) for k, v in zip(names, val_values)})
            callback_list.call("on_epoch_end", epoch, epoch_logs)
            interrupt.check()
            if model.stop_training:
                break
    callback_list.call("on_train_end", epoch_logs)
    return model.history


def _order(n: int, batch_size: int, shuffle: Any) -> np.ndarray:
    if shuffle == "batch":
        # Shuffle whole batches (Keras' option for data that must stay in contiguous blocks).
        starts = np.arange(0, n, batch_size)
        K.rng().shuffle(starts)
        return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts])
    if shuffle:
        return K.rng().permutation(n)
    return np.arange(n)
