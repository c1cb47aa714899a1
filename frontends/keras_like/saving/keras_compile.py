"""Training configuration and optimizer state in Keras files.

- ``compile_config`` (Keras 3 ``config.json``) / ``training_config`` (legacy HDF5): optimizer,
  loss, metrics, loss weights. Options graphc does not implement (weight decay, EMA, learning
  rate schedules, centered RMSprop...) raise :class:`UnsupportedKerasConfig`.
- Optimizer variables in Keras 3's order: ``iteration``, ``learning_rate``, then the slot
  variables Keras 3 creates for the trainable weights (interleaved per weight, e.g. Adam's
  momentum and velocity), then optimizer-wide extras (Nadam's momentum product). graphc's
  update rules keep the same state, so a model resumes training exactly where it stopped.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from frontends.keras_like import losses as losses_mod
from frontends.keras_like import metrics as metrics_mod
from frontends.keras_like import optimizers as optimizers_mod
from frontends.keras_like.saving.keras_config import UnsupportedKerasConfig, keras_snake_case


class NotSerializable(Exception):
    """A custom loss/metric/optimizer with no name Keras could look up."""


# ---------------------------------------------------------------------------------------
# writing
def _loss_entry(loss: Any, style: int) -> Any:
    if isinstance(loss, str):
        return loss
    if isinstance(loss, losses_mod.Loss) and type(loss).__name__ in losses_mod._CLASSES:
        entry = {"class_name": type(loss).__name__, "config": loss.get_config()}
        return {"module": "keras.losses", **entry, "registered_name": None} if style == 3 else entry
    name = getattr(loss, "__name__", None)
    if name and losses_mod._TABLE.get(name) is loss:
        return name
    raise NotSerializable(f"loss {loss!r}")


def _metric_entry(metric: Any) -> Any:
    if isinstance(metric, str):
        return metric
    name = getattr(metric, "__name__", None)
    if name and metrics_mod._TABLE.get(name) is metric:
        return name
    raise NotSerializable(f"metric {metric!r}")


_OPTIMIZER_DEFAULTS_KERAS3_LACKS = {"Nadam": {"schedule_decay": 0.004}}


def optimizer_entry(opt: Any, style: int) -> dict:
    class_name = type(opt).__name__
    if class_name not in optimizers_mod._CLASSES:
        raise NotSerializable(f"optimizer {opt!r}")
    config = {"name": opt.name, **opt.get_config()}
    for key, default in _OPTIMIZER_DEFAULTS_KERAS3_LACKS.get(class_name, {}).items():
        if config.get(key) == default:
            del config[key]
    config = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in config.items()}
    if style == 3:
        return {"module": "keras.optimizers", "class_name": class_name, "config": config,
                "registered_name": None}
    return {"class_name": class_name, "config": config}


def compile_config(model: Any, style: int = 3) -> dict | None:
    """Keras 3's ``compile_config`` (``style=3``) or Keras 2's ``training_config`` (2); ``None``
    (with a warning) when the loss, a metric or the optimizer cannot be named in a file."""
    if not getattr(model, "_compiled", False):
        return None
    try:
        loss = _loss_entry(model.loss, style)
        metrics = [_metric_entry(m) for m in model._metric_specs]
        optimizer = optimizer_entry(model.optimizer, style)
    except NotSerializable as exc:
        warnings.warn(f"the training configuration is not saved: {exc} cannot be referred to by "
                      f"name; compile the loaded model yourself", stacklevel=4)
        return None
    loss_weights = None if model.loss_weight == 1.0 else model.loss_weight
    if style == 3:
        return {"optimizer": optimizer, "loss": loss, "loss_weights": loss_weights,
                "metrics": metrics or None, "weighted_metrics": None, "run_eagerly": False,
                "steps_per_execution": 1, "jit_compile": False}
    return {"optimizer_config": optimizer, "loss": loss, "metrics": metrics,
            "weighted_metrics": None, "loss_weights": loss_weights, "sample_weight_mode": None}


# ---------------------------------------------------------------------------------------
# reading
_OPTIMIZER_FIXED = {"weight_decay": (None, 0, 0.0), "use_ema": (False,), "loss_scale_factor": (None,),
                    "gradient_accumulation_steps": (None, 1)}
_OPTIMIZER_IGNORED = ("ema_momentum", "ema_overwrite_frequency", "jit_compile", "is_legacy_optimizer")
_OPTIMIZER_CLASS_FIXED = {"RMSprop": {"momentum": (0, 0.0), "centered": (False,)}}


def optimizer_from_entry(entry: Any) -> Any:
    if isinstance(entry, str):
        return optimizers_mod.get(entry)
    class_name = str(entry.get("class_name", "")).split(">")[-1]  # tf.keras 2.11: "Custom>Adam"
    cls = optimizers_mod._CLASSES.get(class_name)
    if cls is None:
        raise UnsupportedKerasConfig(f"optimizer {class_name!r} is not supported (graphc has "
                                     f"{', '.join(sorted(optimizers_mod._CLASSES))})")
    where = f"optimizer {class_name}"
    config = dict(entry.get("config") or {})
    fixed = {**_OPTIMIZER_FIXED, **_OPTIMIZER_CLASS_FIXED.get(class_name, {})}
    known = set(cls._defaults) | {"learning_rate", "lr", "decay", "clipnorm", "clipvalue",
                                  "global_clipnorm", "name"}
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key in fixed:
            if value not in fixed[key]:
                raise UnsupportedKerasConfig(f"{where}: option {key}={value!r} is not supported")
        elif key in _OPTIMIZER_IGNORED:
            continue
        elif key in known:
            if isinstance(value, dict):
                raise UnsupportedKerasConfig(f"{where}: {key} given as {value.get('class_name')!r} "
                                             f"(a schedule) is not supported")
            if value is not None:
                kwargs[key] = value
        else:
            raise UnsupportedKerasConfig(f"{where}: option {key!r} is not supported")
    return cls(**kwargs)


def _loss_from_entry(entry: Any) -> Any:
    if isinstance(entry, dict | list) and not (isinstance(entry, dict) and "class_name" in entry):
        values = list(entry.values()) if isinstance(entry, dict) else entry
        if len(values) != 1:
            raise UnsupportedKerasConfig(f"{len(values)} losses: graphc models have one output")
        entry = values[0]
    if isinstance(entry, str):
        return _by_name(entry, losses_mod._TABLE, "loss")
    if isinstance(entry, dict):
        if entry.get("class_name") == "function":
            return _by_name(entry.get("config"), losses_mod._TABLE, "loss")
        class_name = entry.get("class_name")
        cls = losses_mod._CLASSES.get(class_name)
        if cls is None:
            raise UnsupportedKerasConfig(f"loss {class_name!r} is not supported")
        config = dict(entry.get("config") or {})
        reduction = config.pop("reduction", "sum_over_batch_size")
        if reduction not in ("sum_over_batch_size", "auto", None):
            raise UnsupportedKerasConfig(f"loss {class_name}: reduction={reduction!r} is not supported")
        if config.get("dtype") is None:
            config.pop("dtype", None)
        accepted = inspect.signature(cls.fn).parameters
        for key in config:
            if key != "name" and key not in accepted:
                raise UnsupportedKerasConfig(f"loss {class_name}: option {key!r} is not supported")
        return cls(**config)
    raise UnsupportedKerasConfig(f"cannot read loss {entry!r}")


def _by_name(name: Any, table: dict, kind: str) -> str:
    if not isinstance(name, str):
        raise UnsupportedKerasConfig(f"cannot read {kind} {name!r}")
    if name in table or name.lower() in table or name in ("accuracy", "acc", "crossentropy", "ce"):
        return name
    raise UnsupportedKerasConfig(f"{kind} {name!r} is not supported")


def _metrics_from_entry(entry: Any) -> list:
    if entry is None:
        return []
    if isinstance(entry, dict) and "class_name" not in entry:
        entry = [m for ms in entry.values() for m in (ms if isinstance(ms, list) else [ms])]
    if not isinstance(entry, list):
        entry = [entry]
    out: list = []
    for m in entry:
        if isinstance(m, list):  # one list per output
            out += _metrics_from_entry(m)
        elif isinstance(m, dict):
            if m.get("class_name") == "function":
                out.append(_by_name(m.get("config"), metrics_mod._TABLE, "metric"))
            elif m.get("class_name") == "MeanMetricWrapper":  # tf.keras 2: a named function
                config = m.get("config") or {}
                name = config.get("name") or config.get("fn")
                out.append(_by_name(name, metrics_mod._TABLE, "metric"))
            else:
                name = keras_snake_case(str(m.get("class_name")))
                if name in ("accuracy", "categorical_accuracy", "binary_accuracy",
                            "sparse_categorical_accuracy") or name in metrics_mod._TABLE:
                    out.append(name)
                else:
                    raise UnsupportedKerasConfig(f"metric {m.get('class_name')!r} is not supported")
        else:
            out.append(_by_name(m, metrics_mod._TABLE, "metric"))
    return out


def compile_from_config(model: Any, config: dict) -> None:
    """Compile ``model`` as a Keras ``compile_config``/``training_config`` says."""
    optimizer = optimizer_from_entry(config.get("optimizer") or config.get("optimizer_config"))
    loss = _loss_from_entry(config.get("loss"))
    metrics = _metrics_from_entry(config.get("metrics")) + _metrics_from_entry(
        config.get("weighted_metrics"))
    loss_weights = config.get("loss_weights")
    if isinstance(loss_weights, list | dict):
        values = list(loss_weights.values()) if isinstance(loss_weights, dict) else loss_weights
        loss_weights = values[0] if len(values) == 1 else loss_weights
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights)


# ---------------------------------------------------------------------------------------
# optimizer state
# graphc slot name -> Keras 3 variable name, and the groups Keras 3 creates them in.
_KERAS3_SLOTS = {
    "SGD": {"momentum": "momentum"}, "RMSprop": {"accumulator": "velocity"},
    "Adagrad": {"accumulator": "accumulator"},
    "Adadelta": {"accumulator": "accumulated_grad", "delta_accumulator": "accumulated_delta_var"},
    "Adam": {"m": "momentum", "v": "velocity", "vhat": "velocity_hat"},
    "Adamax": {"m": "m", "u": "u"}, "Nadam": {"m": "momentum", "v": "velocity"},
}
_KERAS3_GROUPS = {"Adam": [("m", "v"), ("vhat",)]}


def _params(model: Any) -> list:
    from frontends.keras_like.engine.training import _unique

    return _unique(model.trainable_weights)


def ensure_slots(model: Any) -> None:
    """Create the optimizer's slot variables now (the training function would on first use)."""
    opt = model.optimizer
    for p in _params(model):
        for name, init in opt._slots():
            opt._slot(p, name, init)


def optimizer_variables(model: Any) -> list[tuple[str, Any]]:
    """``(name, variable)`` in Keras 3's order; slots only when they exist."""
    opt = model.optimizer
    prefix = keras_snake_case(type(opt).__name__)
    out: list[tuple[str, Any]] = [(f"{prefix}/iteration", opt.iterations),
                                  (f"{prefix}/learning_rate", opt.learning_rate)]
    slot_names = [name for name, _ in opt._slots()]
    params = _params(model)
    have_slots = bool(slot_names) and all((id(p), slot_names[0]) in opt._slot_vars for p in params)
    if have_slots:
        renames = _KERAS3_SLOTS.get(type(opt).__name__, {})
        groups = _KERAS3_GROUPS.get(type(opt).__name__, [tuple(slot_names)])
        for group in groups:
            for p in params:
                for name in group:
                    if name in slot_names:
                        var = opt._slot_vars[(id(p), name)]
                        label = p.name.replace("/", "_")
                        out.append((f"{prefix}/{label}_{renames.get(name, name)}", var))
    counted = {id(v) for _, v in out} | {id(v) for v in opt._slot_vars.values()}
    for var in opt.weights:  # optimizer-wide extras (Nadam's momentum product)
        if id(var) not in counted and (have_slots or not slot_names):
            out.append((f"{prefix}/{var.name}", var))
    return out


def restore_optimizer(model: Any, values: list[np.ndarray], source: str) -> bool:
    """Set the optimizer state from arrays in Keras 3's order; warn and skip on a mismatch."""
    if not values or not getattr(model, "_compiled", False):
        return False
    ensure_slots(model)
    variables = optimizer_variables(model)
    if len(values) == 2 and len(variables) > 2:
        variables = variables[:2]  # a file saved before the first training step
    if len(values) != len(variables) or any(
            np.shape(v) != var.get_value(borrow=True).shape for v, (_, var) in zip(values, variables)):
        warnings.warn(f"{source}: the optimizer state in the file ({len(values)} arrays) does not fit "
                      f"{type(model.optimizer).__name__} ({len(variables)} variables); the optimizer "
                      f"starts fresh", stacklevel=3)
        return False
    for value, (_, var) in zip(values, variables):
        var.set_value(np.asarray(value, dtype=var.dtype))
    return True
