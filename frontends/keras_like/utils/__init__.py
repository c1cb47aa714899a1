"""Utilities: ``to_categorical`` (also ``np_utils.to_categorical``), ``normalize``,
``plot_model``, ``Progbar``, ``set_random_seed``."""

from frontends.keras_like.backend import set_random_seed
from frontends.keras_like.utils import generic_utils, np_utils, vis_utils
from frontends.keras_like.utils.generic_utils import Progbar
from frontends.keras_like.utils.np_utils import normalize, to_categorical
from frontends.keras_like.utils.vis_utils import model_to_dot, plot_model

__all__ = ["to_categorical", "normalize", "plot_model", "model_to_dot", "Progbar", "np_utils",
           "generic_utils", "vis_utils", "set_random_seed"]
