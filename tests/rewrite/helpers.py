"""Shared checks for rewrite tests: compile with and without rewrites and compare."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import graphc
from graphc.ops.elemwise import Elemwise

# Rewrites are tested on the reference evaluator, so results can be compared bit for bit.
REF = graphc.Mode(backend="py", rewrites="fast_run")
REF_NONE = graphc.Mode(backend="py", rewrites="none")


def compile_both(inputs: Sequence[Any], outputs: Any, mode: Any = REF, **kw: Any) -> tuple:
    fast = graphc.function(inputs, outputs, mode=mode, **kw)
    slow = graphc.function(inputs, outputs, mode=REF_NONE, **kw)
    return fast, slow


def op_names(fn: Any) -> list[str]:
    """Op names of the optimized graph: Elemwise nodes by scalar op, others by class name."""
    names = []
    for node in fn.fgraph.toposort():
        op = node.op
        names.append(op.scalar_op.name if isinstance(op, Elemwise) else type(op).__name__)
    return names


def check_same(fast: Any, slow: Any, *args: Any, rtol: float = 1e-5, atol: float = 1e-6) -> Any:
    """Both functions give the same values, dtypes and shapes for ``args``."""
    a, b = fast(*args), slow(*args)
    a_list = a if isinstance(a, list) else [a]
    b_list = b if isinstance(b, list) else [b]
    for u, v in zip(a_list, b_list):
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == v.dtype
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)
    return a


def rewrite_and_compare(inputs: Sequence[Any], outputs: Any, values: Sequence[Any],
                        rtol: float = 1e-5, atol: float = 1e-6, **kw: Any) -> Any:
    fast, slow = compile_both(inputs, outputs, **kw)
    check_same(fast, slow, *values, rtol=rtol, atol=atol)
    return fast
