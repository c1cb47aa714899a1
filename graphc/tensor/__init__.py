"""The user-facing tensor API (``import graphc.tensor as T``)."""

from graphc.tensor.basic import *  # noqa: I001  (must come first: the ops import it)
from graphc.ops.dimshuffle import *
from graphc.ops.elemwise import *
from graphc.ops.reduce import *
from graphc.ops.linalg import *
from graphc.ops.shape import *
from graphc.ops.subtensor import *
from graphc.ops.control import ifelse
from graphc.tensor import nnet, random
