"""erf's reference works without SciPy (it is an optional dependency)."""

import math
import sys

import numpy as np


def test_erf_without_scipy(monkeypatch) -> None:
    from graphc.ops.elemwise import _erf_impl

    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    x = np.array([[-3.0, -0.5, 0.0], [0.1, 1.0, 4.0]])
    np.testing.assert_allclose(_erf_impl(x), np.vectorize(math.erf)(x), rtol=0, atol=0)
    assert _erf_impl(np.float32(0.5)).shape == ()
