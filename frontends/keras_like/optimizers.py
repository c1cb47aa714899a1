"""Optimizers: symbolic update rules whose state lives in shared variables.

``get_updates(loss, params)`` returns ``(shared, new_value)`` pairs that the
model puts into its single compiled training step. The rules and defaults are
Keras 2's; the learning rate and the iteration counter are shared variables, so
schedules (``LearningRateScheduler``, ``ReduceLROnPlateau``) change them without
recompiling. ``decay`` gives ``lr_k = lr / (1 + decay * k)`` with ``k`` the
number of updates done so far. Both ``lr`` and ``learning_rate`` are accepted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import graphc
import graphc.tensor as T
from frontends.keras_like import backend as K
from frontends.keras_like._compat import lookup, pop_alias, reject_unknown
from graphc.graph.basic import Variable

Updates = list[tuple[Any, Variable]]


class Optimizer:
    """Base class. Subclasses implement ``_param_updates(p, g, lr, t)`` and ``_slots``."""

    _defaults: dict[str, float] = {"learning_rate": 0.01}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Only the learning rate comes first in every Keras version; later positions differ.
        if len(args) > 1:
            raise TypeError(
                f"{type(self).__name__} takes the learning rate as its only positional argument; "
                f"pass the others by name"
            )
        if args:
            if "lr" in kwargs or "learning_rate" in kwargs:
                raise TypeError(f"{type(self).__name__}: learning rate given twice")
            kwargs["learning_rate"] = args[0]
        lr = pop_alias(kwargs, "learning_rate", "lr", default=self._defaults["learning_rate"])
        self.clipnorm = kwargs.pop("clipnorm", None)
        self.clipvalue = kwargs.pop("clipvalue", None)
        self.global_clipnorm = kwargs.pop("global_clipnorm", None)
        self.initial_decay = float(kwargs.pop("decay", 0.0) or 0.0)
        self.name = kwargs.pop("name", type(self).__name__)
        for key, default in self._defaults.items():
            if key != "learning_rate":
                value = kwargs.pop(key, default)
                setattr(self, key, K.epsilon() if key == "epsilon" and value is None else value)
        reject_unknown(kwargs, type(self).__name__)
        self.iterations = K.variable(0, dtype="int64", name="iterations")
        self._lr = K.variable(lr, name="learning_rate")
        self.decay = K.variable(self.initial_decay, name="decay")
        self.weights: list = [self.iterations]
        # Slots are made once per (weight, slot name): recompiling a model keeps the state.
        self._slot_vars: dict[tuple[int, str], K.KerasVariable] = {}

    # -- the learning rate, readable and settable in Keras 2 and Keras 3 style ----------
    @property
    def learning_rate(self) -> K.KerasVariable:
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self._lr.set_value(np.asarray(K.get_value(value), dtype=self._lr.dtype))

    lr = learning_rate

    # -- building the updates ---------------------------------------------------------
    def get_gradients(self, loss: Variable, params: list) -> list[Variable]:
        grads = graphc.grad(loss, list(params), disconnected_inputs="ignore")
        if self.global_clipnorm:
            norm = T.sqrt(sum(T.sum(T.sqr(g)) for g in grads))
            scale = self.global_clipnorm / T.maximum(norm, self.global_clipnorm)
            grads = [g * T.cast(scale, g.dtype) for g in grads]
        if self.clipnorm:
            grads = [g * T.cast(self.clipnorm / T.maximum(T.sqrt(T.sum(T.sqr(g))), self.clipnorm),
                                g.dtype) for g in grads]
        if self.clipvalue:
            grads = [T.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _current_lr(self) -> Variable:
        lr: Variable = self._lr
        if self.initial_decay > 0:
            k = T.cast(self.iterations, K.floatx())
            lr = lr * (1.0 / (1.0 + self.decay * k))
        return lr

    def get_updates(self, loss: Variable, params: list) -> Updates:
        grads = self.get_gradients(loss, params)
        return self.apply_gradients_updates(grads, params)

    def apply_gradients_updates(self, grads: list, params: list) -> Updates:
        lr = self._current_lr()
        t = T.cast(self.iterations + 1, K.floatx())
        updates: Updates = [(self.iterations, self.iterations + 1)]
        updates += self._global_updates(t)
        for p, g in zip(params, grads):
            slots = [self._slot(p, name, init) for name, init in self._slots()]
            new_p, slot_updates = self._param_updates(p, g, lr, t, slots)
            constraint = getattr(p, "constraint", None)
            if constraint is not None:
                new_p = constraint(new_p)
            updates.append((p, T.cast(new_p, p.dtype)))
            updates += [(s, T.cast(v, s.dtype)) for s, v in slot_updates]
        return updates

    def _slot(self, p: Any, name: str, init: float) -> K.KerasVariable:
        key = (id(p), name)
        if key not in self._slot_vars:
            value = np.full(p.get_value(borrow=True).shape, init, dtype=p.dtype)
            var = K.variable(value, dtype=p.dtype, name=f"{p.name}/{name}")
            var.owner_weight = p  # keeps id(p) from being reused while the slot exists
            self._slot_vars[key] = var
            self.weights.append(var)
        return self._slot_vars[key]

    def _slots(self) -> list[tuple[str, float]]:
        return []

    def _global_updates(self, t: Variable) -> Updates:
        return []

    def _param_updates(self, p: Variable, g: Variable, lr: Variable, t: Variable,
                       slots: list) -> tuple[Variable, Updates]:
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        return [w.get_value() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        if len(weights) != len(self.weights):
            raise ValueError(f"{self.name}: expected {len(self.weights)} weight arrays, got "
                             f"{len(weights)}")
        for var, value in zip(self.weights, weights):
            var.set_value(np.asarray(value, dtype=var.dtype))

    def get_config(self) -> dict:
        config = {"learning_rate": float(self._lr.get_value())}
        for key in self._defaults:
            if key != "learning_rate":
                config[key] = getattr(self, key)
        if self.initial_decay:
            config["decay"] = self.initial_decay
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key):
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class SGD(Optimizer):
    """``v = momentum * v - lr * g``; ``p += v`` (or ``p += momentum * v - lr * g``, Nesterov)."""

    _defaults = {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}

    def _slots(self) -> list[tuple[str, float]]:
        return [("momentum", 0.0)] if self.momentum else []

    def _param_updates(self, p, g, lr, t, slots):
        if not self.momentum:
            return p - lr * g, []
        (m,) = slots
        v = self.momentum * m - lr * g
        new_p = p + self.momentum * v - lr * g if self.nesterov else p + v
        return new_p, [(m, v)]


class RMSprop(Optimizer):
    """``a = rho * a + (1 - rho) * g**2``; ``p -= lr * g / (sqrt(a) + eps)``."""

    _defaults = {"learning_rate": 0.001, "rho": 0.9, "epsilon": None}

    def _slots(self):
        return [("accumulator", 0.0)]

    def _param_updates(self, p, g, lr, t, slots):
        (a,) = slots
        new_a = self.rho * a + (1.0 - self.rho) * T.sqr(g)
        return p - lr * g / (T.sqrt(new_a) + self.epsilon), [(a, new_a)]


class Adagrad(Optimizer):
    """``a += g**2``; ``p -= lr * g / (sqrt(a) + eps)``."""

    _defaults = {"learning_rate": 0.01, "epsilon": None, "initial_accumulator_value": 0.0}

    def _slots(self):
        return [("accumulator", self.initial_accumulator_value)]

    def _param_updates(self, p, g, lr, t, slots):
        (a,) = slots
        new_a = a + T.sqr(g)
        return p - lr * g / (T.sqrt(new_a) + self.epsilon), [(a, new_a)]


class Adadelta(Optimizer):
    """Zeiler's rule: steps scaled by the ratio of running RMS of updates and of gradients."""

    _defaults = {"learning_rate": 1.0, "rho": 0.95, "epsilon": None}

    def _slots(self):
        return [("accumulator", 0.0), ("delta_accumulator", 0.0)]

    def _param_updates(self, p, g, lr, t, slots):
        a, d_a = slots
        new_a = self.rho * a + (1.0 - self.rho) * T.sqr(g)
        update = g * T.sqrt(d_a + self.epsilon) / T.sqrt(new_a + self.epsilon)
        new_d_a = self.rho * d_a + (1.0 - self.rho) * T.sqr(update)
        return p - lr * update, [(a, new_a), (d_a, new_d_a)]


class Adam(Optimizer):
    """Bias-corrected moment estimates: ``lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)``."""

    _defaults = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": None,
                 "amsgrad": False}

    def _slots(self):
        slots = [("m", 0.0), ("v", 0.0)]
        return slots + [("vhat", 0.0)] if self.amsgrad else slots

    def _param_updates(self, p, g, lr, t, slots):
        lr_t = lr * (T.sqrt(1.0 - T.pow(self.beta_2, t)) / (1.0 - T.pow(self.beta_1, t)))
        m, v = slots[0], slots[1]
        m_t = self.beta_1 * m + (1.0 - self.beta_1) * g
        v_t = self.beta_2 * v + (1.0 - self.beta_2) * T.sqr(g)
        updates = [(m, m_t), (v, v_t)]
        if self.amsgrad:
            vhat_t = T.maximum(slots[2], v_t)
            updates.append((slots[2], vhat_t))
            return p - lr_t * m_t / (T.sqrt(vhat_t) + self.epsilon), updates
        return p - lr_t * m_t / (T.sqrt(v_t) + self.epsilon), updates


class Adamax(Optimizer):
    """Adam with the infinity norm: ``u = max(b2 * u, |g|)``; ``p -= lr / (1 - b1**t) * m / (u + eps)``."""

    _defaults = {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": None}

    def _slots(self):
        return [("m", 0.0), ("u", 0.0)]

    def _param_updates(self, p, g, lr, t, slots):
        m, u = slots
        lr_t = lr / (1.0 - T.pow(self.beta_1, t))
        m_t = self.beta_1 * m + (1.0 - self.beta_1) * g
        u_t = T.maximum(self.beta_2 * u, T.abs(g))
        return p - lr_t * m_t / (u_t + self.epsilon), [(m, m_t), (u, u_t)]


class Nadam(Optimizer):
    """Adam with Nesterov momentum and Keras 2's momentum schedule (``schedule_decay``)."""

    _defaults = {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": None,
                 "schedule_decay": 0.004}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.m_schedule = K.variable(1.0, name="m_schedule")
        self.weights.append(self.m_schedule)

    def _slots(self):
        return [("m", 0.0), ("v", 0.0)]

    def _global_updates(self, t):
        b1, sd = self.beta_1, self.schedule_decay
        self._mc_t = b1 * (1.0 - 0.5 * T.pow(0.96, t * sd))
        self._mc_t_1 = b1 * (1.0 - 0.5 * T.pow(0.96, (t + 1.0) * sd))
        self._m_schedule_new = self.m_schedule * self._mc_t
        self._m_schedule_next = self.m_schedule * self._mc_t * self._mc_t_1
        return [(self.m_schedule, T.cast(self._m_schedule_new, self.m_schedule.dtype))]

    def _param_updates(self, p, g, lr, t, slots):
        m, v = slots
        g_prime = g / (1.0 - self._m_schedule_new)
        m_t = self.beta_1 * m + (1.0 - self.beta_1) * g
        m_t_prime = m_t / (1.0 - self._m_schedule_next)
        v_t = self.beta_2 * v + (1.0 - self.beta_2) * T.sqr(g)
        v_t_prime = v_t / (1.0 - T.pow(self.beta_2, t))
        m_t_bar = (1.0 - self._mc_t) * g_prime + self._mc_t_1 * m_t_prime
        return p - lr * m_t_bar / (T.sqrt(v_t_prime) + self.epsilon), [(m, m_t), (v, v_t)]


# Lower-case aliases, as Keras 2 has them.
sgd, rmsprop, adagrad, adadelta, adam, adamax, nadam = SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam

_TABLE: dict[str, type] = {
    "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adadelta": Adadelta, "adam": Adam,
    "adamax": Adamax, "nadam": Nadam,
}
_CLASSES = {c.__name__: c for c in _TABLE.values()}


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name (default settings), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _CLASSES:
        return _CLASSES[identifier]()
    found = lookup(identifier, _TABLE, "optimizer")
    if isinstance(found, type) and issubclass(found, Optimizer):
        return found()
    raise ValueError(f"could not interpret optimizer {identifier!r}")


def serialize(opt: Optimizer) -> dict:
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config: dict) -> Optimizer:
    return get(config)
