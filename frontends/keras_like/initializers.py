"""Weight initializers (NumPy): called with a shape, they return the initial array.

Definitions follow Keras 2: ``VarianceScaling`` draws with variance
``scale / n`` (n = fan_in, fan_out or their mean); the ``glorot_*``, ``he_*`` and
``lecun_*`` initializers are its named settings, and ``*_normal`` draws from a
normal truncated at two standard deviations (rescaled to keep the variance).
An initializer with a ``seed`` gives the same values on every call; without one
it draws from the frontend's global generator (``backend.set_random_seed``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from frontends.keras_like import backend as K
from frontends.keras_like._compat import deserialize_config, lookup

# Standard deviation of a unit normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape: tuple) -> tuple[float, float]:
    """Keras' fan-in/fan-out: dense kernels (in, out); conv kernels multiply by the field size."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    field = float(np.prod(shape[:-2]))
    return shape[-2] * field, shape[-1] * field


class Initializer:
    """Base class: ``init(shape, dtype=None) -> np.ndarray``."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed) if self.seed is not None else K.rng()

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"seed": self.seed} if self.seed is not None else {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _as(value: np.ndarray, dtype: str | None) -> np.ndarray:
    return np.asarray(value, dtype=dtype or K.floatx())


class Zeros(Initializer):
    def __init__(self) -> None:
        super().__init__()

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        return np.zeros(shape, dtype=dtype or K.floatx())


class Ones(Initializer):
    def __init__(self) -> None:
        super().__init__()

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        return np.ones(shape, dtype=dtype or K.floatx())


class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = value

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        return np.full(shape, self.value, dtype=dtype or K.floatx())

    def get_config(self) -> dict:
        return {"value": self.value}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        return _as(self._rng().uniform(self.minval, self.maxval, size=shape), dtype)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        return _as(self._rng().normal(self.mean, self.stddev, size=shape), dtype)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


def _truncated_normal(rng: np.random.Generator, shape: tuple, stddev: float) -> np.ndarray:
    """Unit-normal draws redrawn until inside [-2, 2], times ``stddev``."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class TruncatedNormal(RandomNormal):
    """Normal draws beyond two standard deviations are drawn again."""

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        return _as(self.mean + _truncated_normal(self._rng(), shape, self.stddev), dtype)


class VarianceScaling(Initializer):
    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None) -> None:
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution == "normal":  # Keras 2.2 spelling of the truncated normal
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            values = _truncated_normal(rng, shape, math.sqrt(variance) / _TRUNCATED_STD)
        elif self.distribution == "untruncated_normal":
            values = rng.normal(0.0, math.sqrt(variance), size=shape)
        else:
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, size=shape)
        return _as(values, dtype)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain``, from the QR decomposition of a normal draw."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {shape}")
        rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
        a = self._rng().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # makes the result uniformly distributed
        if rows < cols:
            q = q.T
        return _as(self.gain * q.reshape(shape), dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes; non-square gets ones on the diagonal)."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = gain

    def __call__(self, shape: tuple, dtype: str | None = None) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, got {shape}")
        return _as(self.gain * np.eye(*shape), dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain}


def _scaling(name: str, scale: float, mode: str, distribution: str) -> type:
    def __init__(self: VarianceScaling, seed: int | None = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self: VarianceScaling) -> dict:
        return {"seed": self.seed} if self.seed is not None else {}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__doc__": f"VarianceScaling({scale}, {mode!r}, "
                                                      f"{distribution!r})."})


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")

# Functional forms, as Keras exposes them.
zeros = zero = Zeros
ones = one = Ones
constant = Constant
uniform = random_uniform = RandomUniform
normal = random_normal = RandomNormal
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
orthogonal = Orthogonal
identity = Identity
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal = HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal

_CLASSES = {c.__name__: c for c in (
    Zeros, Ones, Constant, RandomUniform, RandomNormal, TruncatedNormal, VarianceScaling,
    Orthogonal, Identity, GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform,
    LecunNormal)}
_NAMES: dict[str, type] = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "uniform": RandomUniform, "random_uniform": RandomUniform, "normal": RandomNormal,
    "random_normal": RandomNormal, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "orthogonal": Orthogonal, "identity": Identity,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_uniform": HeUniform,
    "he_normal": HeNormal, "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    **{name: cls for name, cls in _CLASSES.items()},
}


def get(identifier: Any) -> Callable[..., np.ndarray] | None:
    """An initializer from a name (``'glorot_uniform'``), a config dict, a class or a callable."""
    if identifier is None:
        return None
    identifier = deserialize_config(identifier, _CLASSES, "initializer")
    found = lookup(identifier, _NAMES, "initializer")
    if isinstance(found, type):
        return found()
    if not callable(found):
        raise ValueError(f"could not interpret initializer {identifier!r}")
    return found


def serialize(init: Any) -> Any:
    if isinstance(init, Initializer):
        return {"class_name": type(init).__name__, "config": init.get_config()}
    return getattr(init, "__name__", repr(init))


def deserialize(config: Any) -> Any:
    return get(config)


def make_value(init: Any, shape: tuple, dtype: str) -> np.ndarray:
    """Call an initializer (also Keras-1 style ``init(shape, name=...)`` or one returning a variable)."""
    value = init(tuple(shape), dtype=dtype) if _accepts_dtype(init) else init(tuple(shape))
    value = K.get_value(value)
    value = np.asarray(value, dtype=dtype)
    if value.shape != tuple(shape):
        raise ValueError(f"initializer {init!r} returned shape {value.shape}, expected {tuple(shape)}")
    return value


def _accepts_dtype(fn: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "dtype" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
