"""``T.nnet``: neural-network functions (defined in :mod:`graphc.ops.nnet`)."""

from graphc.ops.nnet import *
