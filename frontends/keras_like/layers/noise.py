"""Noise layers, active only while training: GaussianNoise, GaussianDropout, AlphaDropout."""

from __future__ import annotations

import math
from typing import Any

import graphc.tensor as T
from frontends.keras_like._compat import merge_alias
from frontends.keras_like.layers.base import Layer
from frontends.keras_like.layers.core import Dropout, _dims
from graphc.graph.basic import Variable


class _Noisy(Dropout):
    """Shares Dropout's per-layer random stream; subclasses define the training-time call."""

    def get_config(self) -> dict:
        config = Layer.get_config(self)
        config["seed"] = self.seed
        return config


class GaussianNoise(_Noisy):
    """Add zero-mean Gaussian noise of deviation ``stddev`` (Keras 1: ``sigma``)."""

    def __init__(self, stddev: float | None = None, seed: int | None = None, **kwargs: Any) -> None:
        stddev = merge_alias(stddev, kwargs, "stddev", "sigma")
        super().__init__(rate=0.0, seed=seed, **kwargs)
        if stddev is None or stddev < 0:
            raise ValueError(f"GaussianNoise needs a non-negative stddev, got {stddev!r}")
        self.stddev = float(stddev)

    def call(self, inputs: Variable, training: bool = False) -> Variable:
        if not training or self.stddev == 0:
            return inputs
        return inputs + self.stream().normal(size=tuple(_dims(inputs)), std=self.stddev,
                                             dtype=inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "stddev": self.stddev}


class GaussianDropout(_Noisy):
    """Multiply by Gaussian noise of mean 1 and deviation ``sqrt(rate / (1 - rate))``."""

    def __init__(self, rate: float | None = None, seed: int | None = None, **kwargs: Any) -> None:
        rate = merge_alias(rate, kwargs, "rate", "p")
        super().__init__(rate=rate, seed=seed, **kwargs)

    def call(self, inputs: Variable, training: bool = False) -> Variable:
        if not training or self.rate == 0:
            return inputs
        std = math.sqrt(self.rate / (1.0 - self.rate))
        return inputs * self.stream().normal(size=tuple(_dims(inputs)), avg=1.0, std=std,
                                             dtype=inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate}


class AlphaDropout(_Noisy):
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and the
    result is affinely corrected to keep the mean and variance."""

    def call(self, inputs: Variable, training: bool = False) -> Variable:
        if not training or self.rate == 0:
            return inputs
        alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        alpha_p = -alpha * scale
        rate = self.rate
        u = self.stream().uniform(size=self._noise_size(inputs), dtype=inputs.dtype)
        kept = T.cast(T.ge(u, rate), inputs.dtype)
        a = ((1.0 - rate) * (1.0 + rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * rate
        return a * (inputs * kept + alpha_p * (1.0 - kept)) + b

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape}
