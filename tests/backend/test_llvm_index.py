"""Native ``x[idx]`` / ``set_subtensor`` / ``inc_subtensor`` with an integer array on the first
axis, against the reference; out-of-range indices raise, never touch memory."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.compile.mode import Mode
from graphc.ops.subtensor import IncSubtensor, Subtensor

NATIVE = Mode("llvm", "fast_run")


def _values(rng: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    if dtype[0] == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-9, 9, shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("xnd", [1, 2, 3])
@pytest.mark.parametrize("idtype,qnd", [("int64", 1), ("int32", 2), ("uint8", 1)])
def test_take_set_inc(dtype: str, xnd: int, idtype: str, qnd: int) -> None:
    x = T.tensor(dtype, shape=(None,) * xnd, name="x")
    i = T.tensor(idtype, shape=(None,) * qnd, name="i")
    y = T.tensor(dtype, shape=(None,) * (qnd + xnd - 1), name="y")
    yb = T.tensor(dtype, shape=(None,) * (xnd - 1), name="yb")  # broadcast over the indices
    outs = [x[i], T.inc_subtensor(x[i], y), T.set_subtensor(x[i], y), T.inc_subtensor(x[i], yb)]
    fn = graphc.function([x, i, y, yb], outs, mode=NATIVE)
    ref = graphc.function([x, i, y, yb], outs, mode="PY")
    native = [type(n.op) for n in fn._program.native_nodes]
    assert native.count(Subtensor) == 1 and native.count(IncSubtensor) == 3
    rng = np.random.default_rng(xnd * 10 + qnd)
    xs = (6, 3, 4)[:xnd]
    a = _values(rng, xs, dtype)
    ix = rng.integers(-6 if idtype[0] == "i" else 0, 6, (5, 2)[:qnd]).astype(idtype)  # repeats too
    yv, ybv = _values(rng, ix.shape + xs[1:], dtype), _values(rng, xs[1:], dtype)
    views = [(a, ix, yv, ybv), (a[::-1], ix[::-1], yv, ybv)]
    if xnd >= 2:
        views.append((np.asfortranarray(a), ix, np.asfortranarray(yv), ybv))
    for args in views:
        for got, want in zip(fn(*args), ref(*args)):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("bad", [6, -7, 2**40])
def test_out_of_range_indices_raise(bad: int) -> None:
    x, i, y = T.fmatrix("x"), T.lvector("i"), T.fmatrix("y")
    for out in (x[i], T.inc_subtensor(x[i], y), T.set_subtensor(x[i], y)):
        fn = graphc.function([x, i, y], out, mode=NATIVE, on_unused_input="ignore")
        with pytest.raises(NodeRuntimeError, match="out of bounds"):
            fn(np.zeros((6, 3), "float32"), np.array([0, bad, 1]), np.ones((3, 3), "float32"))
    u = T.tensor("uint64", shape=(None,), name="u")
    fn = graphc.function([x, u], x[u], mode=NATIVE)
    ref = graphc.function([x, u], x[u], mode="PY")
    a = np.arange(18, dtype="float32").reshape(6, 3)
    huge = np.array([2**64 - 1, 2**63], "uint64")  # NumPy reads these as -1 and -2**63
    with pytest.raises(NodeRuntimeError, match="out of bounds"):
        ref(a, huge)
    with pytest.raises(NodeRuntimeError, match="out of bounds"):
        fn(a, huge)
    np.testing.assert_array_equal(fn(a, huge[:1]), ref(a, huge[:1]))


def test_mismatched_update_shape_raises() -> None:
    x, i, y = T.fmatrix("x"), T.lvector("i"), T.fmatrix("y")
    fn = graphc.function([x, i, y], T.inc_subtensor(x[i], y), mode=NATIVE)
    with pytest.raises(NodeRuntimeError):
        fn(np.zeros((6, 3), "float32"), np.array([0, 1]), np.ones((3, 3), "float32"))


def test_embedding_gradient() -> None:
    W, idx = T.fmatrix("W"), T.lmatrix("idx")
    loss = T.sum(T.sqr(W[idx]))
    outs = [loss, graphc.grad(loss, W)]
    fn = graphc.function([W, idx], outs, mode=NATIVE)
    ref = graphc.function([W, idx], outs, mode="PY")
    rng = np.random.default_rng(1)
    w, ix = rng.standard_normal((50, 8)).astype("float32"), rng.integers(0, 50, (7, 9))
    for got, want in zip(fn(w, ix), ref(w, ix)):
        np.testing.assert_allclose(got, want, rtol=1e-5)
