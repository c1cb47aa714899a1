"""A plan whose kernels keep refusing (a value they check changes every call) is dropped,
so calls stop paying for the plan and the per-node path both."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import plan_interp


@pytest.mark.skipif(plan_interp.interpreter() is None, reason="no plan interpreter on this platform")
def test_a_plan_refused_every_call_is_dropped() -> None:
    n = T.lscalar("n")
    x = T.vector("x", dtype="float64")
    f = graphc.function([x, n], T.alloc(x, n, 3) * 2.0)
    v = np.arange(3.0)
    for rows in (1, 1, 1):  # recorded, then replayed as a plan
        assert np.array_equal(f(v, np.array(rows)), np.tile(v * 2, (rows, 1)))
    assert f._plan is not None, f._plan_why
    for rows in range(2, 8):  # the Alloc kernel refuses the recorded shape each time
        assert np.array_equal(f(v, np.array(rows)), np.tile(v * 2, (rows, 1)))
    assert f._plan is None and "refused 3 calls" in f._plan_why


@pytest.mark.skipif(plan_interp.interpreter() is None, reason="no plan interpreter on this platform")
def test_errors_raised_through_a_plan_do_not_drop_it() -> None:
    x = T.vector("x", dtype="float64")
    i = T.lvector("i")
    f = graphc.function([x, i], x[i] * 2.0)
    v, ok = np.arange(5.0), np.array([0, 4, 2])
    for _ in range(3):
        assert np.array_equal(f(v, ok), v[ok] * 2)
    assert f._plan is not None, f._plan_why
    for _ in range(5):  # out of range: the kernel refuses, the per-node path raises
        with pytest.raises(ValueError, match="out of bounds"):
            f(v, np.array([0, 9, 2]))
    assert f._plan is not None
    assert np.array_equal(f(v, ok), v[ok] * 2)
