"""Constant folding: a node whose inputs are all constants is computed once, at compile time.

Folding is bounded: only outputs whose static shape is fully known and holds at
most :data:`MAX_FOLD_SIZE` elements are materialized, so ``zeros((10**5, 10**5))``
stays a node that runs (or fails) when the function runs. Random ops and nodes
reading shared variables are never folded (a shared variable is not a
constant, and a random op's value belongs to the call that draws it).
"""

from __future__ import annotations

import math

import numpy as np

from graphc.graph.basic import Apply, Constant, Variable
from graphc.graph.fgraph import FunctionGraph
from graphc.rewrite.framework import register_local
from graphc.rewrite.utils import FAST, is_random_op

MAX_FOLD_SIZE = 100_000


def _foldable(node: Apply) -> bool:
    if is_random_op(node.op) or getattr(node.op, "lazy", False):
        return False
    if not all(isinstance(i, Constant) for i in node.inputs):
        return False
    for out in node.outputs:
        if None in out.type.shape or math.prod(out.type.shape) > MAX_FOLD_SIZE:
            return False
    return True


@register_local("canonicalize", "specialize", tags=FAST)
def constant_folding(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    if not _foldable(node):
        return None
    try:
        with np.errstate(all="ignore"):
            values = node.op.perform(node, [i.data for i in node.inputs])
    except Exception:  # noqa: BLE001 - a failing op is left to fail, with its trace, at run time
        return None
    result = []
    for out, value in zip(node.outputs, values):
        value = np.asarray(value)
        if value.dtype.name != out.dtype or value.shape != out.type.shape:
            return None
        result.append(Constant(out.type, value.copy()))
    return result
