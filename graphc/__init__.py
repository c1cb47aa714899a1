"""graphc: a symbolic graph compiler for tensor math, in the tradition of Theano.

Build a graph with :mod:`graphc.tensor`, differentiate it with :func:`grad`,
compile it with :func:`function`.
"""

from graphc import (
    gradient,
    printing,
    tensor,  # noqa: I001  (the tensor API must load before anything using ops)
)
from graphc.compile.function import Function, In, Out, function
from graphc.compile.mode import Mode
from graphc.compile.shared import SharedVariable, shared
from graphc.config import config
from graphc.gradient import grad
from graphc.ops.control import ifelse

__version__ = "0.1.0"
__all__ = [
    "config", "tensor", "function", "Function", "In", "Out", "Mode", "shared", "SharedVariable",
    "grad", "ifelse", "gradient", "printing",
]
