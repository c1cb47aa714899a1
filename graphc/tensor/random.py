"""``T.random``: random streams (defined in :mod:`graphc.ops.random`)."""

from graphc.ops.random import *
