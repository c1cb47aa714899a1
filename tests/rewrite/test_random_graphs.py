"""Differential check: random graphs compute the same with and without rewrites.

Graphs mix elementwise ops, constants (0, 1, -1, 2 to trigger the algebraic
rewrites), broadcasting inputs, reductions, transposes and dots, in float32,
float64 and int32; their gradients are checked the same way.
"""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from tests.rewrite.helpers import REF, REF_NONE

UNARY = [T.exp, T.tanh, T.neg, T.sqr, lambda v: T.log(T.abs(v) + 1), T.nnet.sigmoid,
         lambda v: T.log(T.nnet.sigmoid(v)), lambda v: T.log1p(-T.nnet.sigmoid(v)),
         lambda v: v ** 2, lambda v: T.sqrt(T.abs(v)), lambda v: T.cast(v, "float64"),
         lambda v: v.T if v.ndim == 2 else v, lambda v: T.exp(T.log(T.sqr(v) + 1))]
BINARY = [T.add, T.sub, T.mul, lambda a, b: a / (T.abs(b) + 1), T.maximum,
          lambda a, b: (a / (T.sqr(b) + 1)) * (T.sqr(b) + 1), lambda a, b: a - a * b + b * 1]
CONSTS = [0.0, 1.0, -1.0, 2.0]


def _random_graph(rng, leaves):
    pool = list(leaves)
    for _ in range(int(rng.integers(4, 12))):
        kind = rng.random()
        a = pool[int(rng.integers(len(pool)))]
        try:
            if kind < 0.35:
                out = UNARY[int(rng.integers(len(UNARY)))](a)
            elif kind < 0.75:
                b = pool[int(rng.integers(len(pool)))] if rng.random() < 0.8 \
                    else float(CONSTS[int(rng.integers(len(CONSTS)))])
                out = BINARY[int(rng.integers(len(BINARY)))](a, b)
            elif kind < 0.85 and a.ndim == 2:
                out = T.dot(a, T.transpose(a)) * 0.1
            else:
                axis = None if a.ndim == 0 or rng.random() < 0.3 else int(rng.integers(a.ndim))
                out = T.sum(a, axis=axis, keepdims=bool(rng.random() < 0.5))
        except (TypeError, ValueError):
            continue
        pool.append(out)
    return pool[-1]


@pytest.mark.parametrize("seed", range(60))
def test_random_graph_matches_unrewritten(seed) -> None:
    rng = np.random.default_rng(seed)
    dtype = ["float32", "float64", "int32"][seed % 3]
    x = T.tensor(dtype, (None, None) if seed % 2 else (3, None), "x")
    row = T.tensor(dtype, (1, None), "row")
    s = T.tensor(dtype, (), "s") if seed % 4 < 2 else T.tensor(dtype, (None, 1), "col")
    out = _random_graph(rng, [x, row, s])
    values = [rng.uniform(0.5, 1.5, size=(3, 3)) * rng.choice([-1, 1], size=(3, 3)),
              rng.uniform(0.5, 1.5, size=(1, 3)),
              np.asarray(1.25) if s.ndim == 0 else rng.uniform(0.5, 1.5, size=(3, 1))]
    values = [v.astype(dtype) if dtype != "int32" else np.round(v * 3).astype(dtype) for v in values]
    fast = graphc.function([x, row, s], out, mode=REF, on_unused_input="ignore")
    slow = graphc.function([x, row, s], out, mode=REF_NONE, on_unused_input="ignore")
    a, b = fast(*values), slow(*values)
    assert a.dtype == b.dtype and a.shape == b.shape
    tol = 1e-9 if dtype == "float64" else 1e-3  # float32 work may be upcast later
    finite = np.isfinite(b)
    np.testing.assert_allclose(a[finite], b[finite], rtol=tol, atol=tol)
    if not out.type.is_float or dtype == "int32":
        return
    cost = T.sum(T.tanh(out) if out.ndim else out)
    g = graphc.grad(cost, [x, row], disconnected_inputs="ignore")
    fast = graphc.function([x, row, s], g, mode=REF, on_unused_input="ignore")
    slow = graphc.function([x, row, s], g, mode=REF_NONE, on_unused_input="ignore")
    for u, v in zip(fast(*values), slow(*values)):
        ok = np.isfinite(v)
        assert u.shape == v.shape and u.dtype == v.dtype
        np.testing.assert_allclose(u[ok], v[ok], rtol=tol * 10, atol=tol * 10)
