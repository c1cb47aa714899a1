"""compile / fit / evaluate / predict: the model as three compiled graphc functions.

``compile`` records the optimizer, loss and metrics; the functions are built on
first use (shapes are then known) and never again until the next ``compile``:

- the *training step*: forward pass with ``training=True`` (dropout, noise, batch
  statistics), loss weighted by sample/class weights plus regularization
  penalties, gradients, optimizer updates, BatchNormalization moving averages and
  weight constraints, all in ONE ``graphc.function``;
- the *test step*: the same loss and metrics on the inference graph;
- *prediction*: the inference graph's output.

The batch axis is symbolic, so any batch size runs through the same functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc
import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like import losses as losses_mod
from frontends.keras_like import metrics as metrics_mod
from frontends.keras_like import optimizers as optimizers_mod
from frontends.keras_like.engine import data
from graphc.graph.basic import Variable

_IGNORED_COMPILE_ARGS = ("sample_weight_mode", "class_mode", "target_tensors", "run_eagerly", "jit_compile",
                         "steps_per_execution", "auto_scale_loss", "pss_evaluation_shards")


def _single(value: Any, what: str) -> Any:
    """One-output models: unwrap ``[x]`` or ``{name: x}``."""
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"{what}: a Sequential model has one output, got {len(value)} entries")
        return next(iter(value.values()))
    if isinstance(value, list | tuple) and what != "metrics":
        if len(value) != 1:
            raise ValueError(f"{what}: a Sequential model has one output, got {len(value)} entries")
        return value[0]
    return value


class TrainingMixin:
    """Adds the Keras training API to a model providing ``_forward``, shapes and weights."""

    optimizer: Any = None
    stop_training: bool = False

    def _reset_compiled(self) -> None:
        self._train_fn = self._test_fn = self._predict_fn = None

    # -- compile -----------------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None,
                loss_weights: Any = None, weighted_metrics: Any = None, **kwargs: Any) -> None:
        """Configure training: ``compile(optimizer='adam', loss='mse', metrics=['mae'])``."""
        for name in _IGNORED_COMPILE_ARGS:
            kwargs.pop(name, None)
        if kwargs:
            raise TypeError(f"compile: unexpected arguments {sorted(kwargs)}")
        if loss is None:
            raise ValueError("compile: a loss is required (e.g. loss='mse')")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = _single(loss, "loss")
        self.loss_fn = losses_mod.get(self.loss)
        weight = _single(loss_weights, "loss_weights") if loss_weights is not None else 1.0
        self.loss_weight = float(weight)
        metrics = _single(metrics, "metrics") if isinstance(metrics, dict) else metrics
        self._metric_specs = list(metrics or []) + list(weighted_metrics or [])
        self._metric_fns: list[tuple[str, Any]] | None = None
        self._compiled = True
        self._reset_compiled()

    @property
    def metrics_names(self) -> list[str]:
        if not getattr(self, "_compiled", False):
            return []
        return ["loss"] + [name for name, _ in self._resolved_metrics()]

    def _resolved_metrics(self) -> list[tuple[str, Any]]:
        if self._metric_fns is None:
            out_shape = self.output_shape
            resolved = [metrics_mod.resolve(m, self.loss_fn, out_shape) for m in self._metric_specs]
            names = [n for n, _ in resolved]
            dupes = {n for n in names if names.count(n) > 1}
            if dupes:
                raise ValueError(f"metrics listed twice: {sorted(dupes)}")
            self._metric_fns = resolved
        return self._metric_fns

    def _require_compiled(self, what: str) -> None:
        if not getattr(self, "_compiled", False):
            raise RuntimeError(f"you must compile the model before {what} (model.compile(...))")

    # -- building the compiled functions -------------------------------------------------
    def _sparse_targets(self) -> bool:
        return losses_mod.is_sparse(self.loss_fn)

    def _placeholders(self) -> tuple[Variable, Variable, Variable]:
        x = T.tensor(K.floatx(), shape=(None, *self.input_shape[1:]), name="x")
        out_shape = self.output_shape
        if self._sparse_targets():
            y = T.tensor("int64", shape=(None, *out_shape[1:-1]), name="y")
        else:
            y = T.tensor(K.floatx(), shape=(None, *out_shape[1:]), name="y")
        sw = T.tensor(K.floatx(), shape=(None,), name="sample_weight")
        return x, y, sw

    def _objective(self, y: Variable, sw: Variable, out: Variable,
                   extra_losses: list[Variable]) -> tuple[Variable, list[Variable]]:
        per_sample = T.as_tensor_variable(self.loss_fn(y, out))
        while per_sample.ndim > 1:
            per_sample = T.mean(per_sample, axis=-1)
        if per_sample.ndim == 0:  # a custom loss that already reduced over the batch
            data_loss = per_sample
        else:
            data_loss = T.mean(per_sample * sw)
        total = T.cast(data_loss, K.floatx())
        if self.loss_weight != 1.0:
            total = total * self.loss_weight
        for penalty in [*self._weight_penalties(), *extra_losses]:
            total = total + T.cast(penalty, K.floatx())
        metric_values = [T.cast(T.mean(fn(y, out)), K.floatx())
                         for _, fn in self._resolved_metrics()]
        return total, metric_values

    def _weight_penalties(self) -> list[Variable]:
        return [p for layer in self.layers for p in layer.regularization_losses()]

    def _make_train_function(self) -> Any:
        if self._train_fn is None:
            self._require_compiled("training")
            x, y, sw = self._placeholders()
            out, extra_losses, layer_updates = self._forward(x, training=True)
            total, metric_values = self._objective(y, sw, out, extra_losses)
            params = _unique(self.trainable_weights)
            updates = self.optimizer.get_updates(total, params) if params else []
            updates = updates + list(layer_updates)
            self._train_fn = graphc.function([x, y, sw], [total, *metric_values], updates=updates,
                                             name="train_function", on_unused_input="ignore")
        return self._train_fn

    def _make_test_function(self) -> Any:
        if self._test_fn is None:
            self._require_compiled("evaluation")
            x, y, sw = self._placeholders()
            out, extra_losses, _ = self._forward(x, training=False)
            total, metric_values = self._objective(y, sw, out, extra_losses)
            self._test_fn = graphc.function([x, y, sw], [total, *metric_values],
                                            name="test_function", on_unused_input="ignore")
        return self._test_fn

    def _make_predict_function(self) -> Any:
        if self._predict_fn is None:
            x = T.tensor(K.floatx(), shape=(None, *self.input_shape[1:]), name="x")
            out, _, _ = self._forward(x, training=False)
            self._predict_fn = graphc.function([x], out, name="predict_function")
        return self._predict_fn

    # -- data ----------------------------------------------------------------------------
    def _prepare(self, x: Any, y: Any, sample_weight: Any = None,
                 class_weight: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.built:
            self.build((None, *np.shape(x)[1:]))
        xs = data.standardize_x(x, self.input_shape)
        sparse = self._sparse_targets()
        ys = data.standardize_y(y, self.output_shape, sparse)
        data.check_lengths(xs, ys)
        sw = data.sample_weights(ys, sample_weight, class_weight, sparse)
        return xs, ys, sw

    # -- single batches -----------------------------------------------------------------
    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None, class_weight: Any = None,
                       reset_metrics: bool = True, return_dict: bool = False) -> Any:
        xs, ys, sw = self._prepare(x, y, sample_weight, class_weight)
        outs = self._make_train_function()(xs, ys, sw)
        return self._format_outputs(outs, return_dict)

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any = None, reset_metrics: bool = True,
                      return_dict: bool = False) -> Any:
        xs, ys, sw = self._prepare(x, y, sample_weight)
        outs = self._make_test_function()(xs, ys, sw)
        return self._format_outputs(outs, return_dict)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        if not self.built:
            self.build((None, *np.shape(x)[1:]))
        return self._make_predict_function()(data.standardize_x(x, self.input_shape))

    def _format_outputs(self, outs: list, return_dict: bool) -> Any:
        values = [float(o) for o in outs]
        if return_dict:
            return dict(zip(self.metrics_names, values))
        return values[0] if len(values) == 1 else values

    # -- whole arrays ---------------------------------------------------------------------
    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int = 1,
                 sample_weight: Any = None, steps: Any = None, callbacks: Any = None,
                 return_dict: bool = False, **kwargs: Any) -> Any:
        """Loss (and metrics) on ``x, y``, averaged over samples: a float or ``[loss, *metrics]``."""
        kwargs.pop("show_accuracy", None)
        if kwargs:
            raise TypeError(f"evaluate: unexpected arguments {sorted(kwargs)}")
        xs, ys, sw = self._prepare(x, y, sample_weight)
        values = self._run_test_loop(xs, ys, sw, batch_size or 32, verbose)
        return self._format_outputs(values, return_dict)

    def _run_test_loop(self, xs: np.ndarray, ys: np.ndarray, sw: np.ndarray, batch_size: int,
                       verbose: int = 0) -> list[float]:
        from frontends.keras_like.utils.generic_utils import Progbar

        fn = self._make_test_function()
        n = len(xs)
        totals = np.zeros(len(self.metrics_names))
        bar = Progbar(n) if verbose == 1 else None
        for sl in data.batch_slices(n, batch_size):
            outs = fn(xs[sl], ys[sl], sw[sl])
            size = sl.stop - sl.start
            totals += np.array([float(o) for o in outs]) * size
            if bar is not None:
                bar.update(sl.stop, list(zip(self.metrics_names, (float(o) for o in outs))))
        return list(totals / max(n, 1))

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0, steps: Any = None,
                callbacks: Any = None) -> np.ndarray:
        """Model outputs for ``x``, computed batch by batch by the compiled inference graph."""
        from frontends.keras_like.utils.generic_utils import Progbar

        if not self.built:
            self.build((None, *np.shape(x)[1:]))
        xs = data.standardize_x(x, self.input_shape)
        fn = self._make_predict_function()
        batch_size = batch_size or 32
        bar = Progbar(len(xs)) if verbose == 1 else None
        parts = []
        for sl in data.batch_slices(len(xs), batch_size):
            parts.append(fn(xs[sl]))
            if bar is not None:
                bar.update(sl.stop)
        if not parts:
            return np.zeros((0, *self.output_shape[1:]), dtype=K.floatx())
        return np.concatenate(parts, axis=0)

    def predict_proba(self, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Keras 2's Sequential ``predict_proba``: the outputs, expected to be probabilities."""
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def predict_classes(self, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Class indices: argmax for several outputs, ``output > 0.5`` for a single one."""
        proba = self.predict(x, batch_size=batch_size, verbose=verbose)
        if proba.shape[-1] > 1:
            return proba.argmax(axis=-1)
        return (proba > 0.5).astype("int32")

    # -- fit -------------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int = 1, callbacks: Any = None, validation_split: float = 0.0,
            validation_data: Any = None, shuffle: Any = True, class_weight: Any = None,
            sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: Any = None,
            validation_steps: Any = None, validation_batch_size: int | None = None,
            validation_freq: int = 1, **kwargs: Any) -> Any:
        """Train for ``epochs`` (Keras 1: ``nb_epoch``); returns the ``History``."""
        from frontends.keras_like.engine.loop import run_fit

        if "nb_epoch" in kwargs:
            epochs = kwargs.pop("nb_epoch")
        kwargs.pop("show_accuracy", None)  # Keras 0.x: metrics now come from compile()
        if kwargs:
            raise TypeError(f"fit: unexpected arguments {sorted(kwargs)}")
        if steps_per_epoch is not None or validation_steps is not None:
            raise NotImplementedError("steps_per_epoch/validation_steps (generator input) are not "
                                      "supported; fit takes arrays and goes through them per epoch")
        self._require_compiled("training")
        xs, ys, sw = self._prepare(x, y, sample_weight, class_weight)
        val = None
        if validation_data is not None:
            if len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, weights)")
            val = self._prepare(validation_data[0], validation_data[1],
                                validation_data[2] if len(validation_data) == 3 else None)
        elif validation_split:
            (xs, ys, sw), val_parts = data.split_validation([xs, ys, sw], validation_split)
            val = tuple(val_parts)
        return run_fit(self, xs, ys, sw, val, batch_size=batch_size or 32, epochs=epochs,
                       verbose=verbose, callbacks=callbacks, shuffle=shuffle,
                       initial_epoch=initial_epoch, val_batch_size=validation_batch_size,
                       validation_freq=validation_freq)


def _unique(variables: list) -> list:
    seen: set[int] = set()
    out = []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out
