"""Keras 1's name for :mod:`frontends.keras_like.losses`."""

from frontends.keras_like.losses import *  # noqa: F403
from frontends.keras_like.losses import get  # noqa: F401
