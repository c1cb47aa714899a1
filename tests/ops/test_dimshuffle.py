"""dimshuffle, transpose and .T: NumPy parity, static shapes, dropping axes, errors, gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.gradient import verify_grad
from graphc.ops.dimshuffle import DimShuffle


def numpy_dimshuffle(v: np.ndarray, pattern: tuple) -> np.ndarray:
    kept = [p for p in pattern if p != "x"]
    dropped = [i for i in range(v.ndim) if i not in kept]
    assert all(v.shape[i] == 1 for i in dropped)
    out = np.transpose(v, kept + dropped).reshape([v.shape[p] for p in kept])
    for pos, p in enumerate(pattern):
        if p == "x":
            out = np.expand_dims(out, pos)
    return out


def run(inputs: list, outputs: object, *values: np.ndarray) -> object:
    return graphc.function(inputs, outputs, mode="PY")(*values)


# (static input shape, value shape, pattern, expected static output shape)
CASES = [
    ((None, 3), (2, 3), (1, 0), (3, None)),
    ((None, 3), (2, 3), ("x", 0, 1), (1, None, 3)),
    ((None, 3), (2, 3), (0, "x", 1), (None, 1, 3)),
    ((None, 3), (2, 3), (1, "x", 0, "x"), (3, 1, None, 1)),
    ((None,), (4,), ("x", 0), (1, None)),
    ((None,), (4,), (0, "x"), (None, 1)),
    ((), (), ("x", "x"), (1, 1)),
    ((2, 3, 4), (2, 3, 4), (2, 0, 1), (4, 2, 3)),
    ((1, None), (1, 5), (1,), (None,)),
    ((None, 1), (5, 1), (0,), (None,)),
    ((1, None, 1), (1, 4, 1), ("x", 1), (1, None)),
    ((3, 1, 4), (3, 1, 4), (2, "x", 0), (4, 1, 3)),
    ((1,), (1,), (), ()),
    ((1, 1), (1, 1), ("x",), (1,)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "bool"])
@pytest.mark.parametrize("static,shape,pattern,want", CASES)
def test_dimshuffle_against_numpy(static: tuple, shape: tuple, pattern: tuple, want: tuple,
                                  dtype: str, rng: np.random.Generator) -> None:
    x = T.tensor(dtype, shape=static, name="x")
    v = (rng.standard_normal(shape) * 3).astype(dtype)
    out = x.dimshuffle(*pattern)
    assert out.dtype == dtype
    assert out.type.shape == want
    assert T.dimshuffle(x, list(pattern)).type.shape == want
    got = run([x], out, v)
    expected = numpy_dimshuffle(v, pattern)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_identity_pattern_returns_the_variable() -> None:
    x = T.tensor3("x")
    assert x.dimshuffle(0, 1, 2) is x
    assert T.transpose(x, (0, 1, 2)) is x
    v = T.vector("v")
    assert v.T is v


def test_equal_patterns_give_equal_ops() -> None:
    assert DimShuffle(2, (1, 0)) == DimShuffle(2, [1, 0])
    assert hash(DimShuffle(2, ("x", 0, 1))) == hash(DimShuffle(2, ["x", 0, 1]))
    assert DimShuffle(2, (1, 0)) != DimShuffle(2, (0, 1))


@pytest.mark.parametrize("shape,axes", [
    ((2, 3), ()),
    ((2, 3, 4), ()),
    ((2, 3, 4), (1, 0, 2)),
    ((2, 3, 4), (2, 0, 1)),
    ((2, 3, 4), (-1, 0, -2)),
    ((2, 3, 4, 5), (3, 1, 0, 2)),
    ((5,), ()),
    ((), ()),
])
def test_transpose_against_numpy(shape: tuple, axes: tuple, rng: np.random.Generator) -> None:
    static = tuple(None if k % 2 else s for k, s in enumerate(shape))
    x = T.tensor("float64", shape=static, name="x")
    v = rng.standard_normal(shape)
    outs = [T.transpose(x, *axes), T.transpose(x, axes), x.transpose(*axes)]
    expected = np.transpose(v, axes or None)
    perm = [a % len(shape) for a in axes] if axes else list(reversed(range(len(shape))))
    want_static = tuple(static[p] for p in perm)
    for out in outs:
        assert out.type.shape == want_static
    for got in run([x], outs, v):
        np.testing.assert_array_equal(got, expected)


def test_dot_T_property() -> None:
    x = T.tensor("float32", shape=(None, 3), name="x")
    assert x.T.type.shape == (3, None)
    assert x.T.T.type.shape == (None, 3)
    v = np.arange(6, dtype="float32").reshape(2, 3)
    got_t, got_tt = run([x], [x.T, x.T.T], v)
    np.testing.assert_array_equal(got_t, v.T)
    np.testing.assert_array_equal(got_tt, v)
    # A column broadcasts like a row after .T.
    c = T.col("c")
    assert c.type.shape == (None, 1) and c.T.type.shape == (1, None)
    assert (c.T + x).type.shape == (None, 3)


# ---------------------------------------------------------------------------------------
# errors


def test_dropping_a_non_broadcastable_axis_fails_at_build_time() -> None:
    x = T.tensor("float32", shape=(2, 3), name="x")
    with pytest.raises(ValueError, match="cannot drop axis 0 of static length 2"):
        x.dimshuffle(1)
    with pytest.raises(ValueError, match="cannot drop axis 1"):
        x.dimshuffle("x", 0)


def test_dropping_an_axis_of_unknown_length_is_checked_at_run_time() -> None:
    x = T.matrix("x")
    out = x.dimshuffle(1)
    assert out.type.shape == (None,)
    f = graphc.function([x], out, mode="PY")
    np.testing.assert_array_equal(f(np.ones((1, 4), "float32")), np.ones(4, "float32"))
    with pytest.raises(NodeRuntimeError, match="axis 0 has length 3") as info:
        f(np.ones((3, 4), "float32"))
    assert "DimShuffle" in str(info.value) and "test_dimshuffle.py" in str(info.value)


@pytest.mark.parametrize("pattern", [(0, 0), (0, 2), (-1, 0), (0, 1, 2), (1, "x", 1)])
def test_invalid_patterns(pattern: tuple) -> None:
    x = T.matrix("x")
    with pytest.raises(ValueError, match="invalid pattern"):
        x.dimshuffle(*pattern)


def test_op_checks_input_rank() -> None:
    op = DimShuffle(2, (1, 0))
    with pytest.raises(TypeError, match="2-d input"):
        op(T.vector("v"))


@pytest.mark.parametrize("axes", [(1, 0), (0, 0, 1), (0, 1, 3), (0, 1, 2, 0)])
def test_transpose_rejects_non_permutations(axes: tuple) -> None:
    with pytest.raises(ValueError):
        T.transpose(T.tensor3("x"), axes)


@pytest.mark.parametrize("axes", [(2, 0, 4), (-4, 0, 1), (0, 1, 5)])
def test_transpose_rejects_out_of_range_axes(axes: tuple) -> None:
    # Reducing them modulo ndim would quietly turn (2, 0, 4) into the permutation (2, 0, 1).
    with pytest.raises(ValueError, match="out of range"):
        T.transpose(T.tensor3("x"), axes)
    with pytest.raises(ValueError):
        T.transpose(T.scalar("s"), 0)


# ---------------------------------------------------------------------------------------
# gradients

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    # Insert, permute and drop in one pattern: (a, 1, b) -> (b, 1, a, 1).
    "dimshuffle": (lambda x: x.dimshuffle(2, "x", 0, "x") * np.arange(1.0, 4.0).reshape(1, 1, 3, 1),
                   [np.random.default_rng(3).standard_normal((3, 1, 4))]),
    "transpose": (lambda x: T.transpose(x, (2, 0, 1)) ** 2,
                  [np.random.default_rng(4).standard_normal((2, 3, 4))]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grad(name: str) -> None:
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


@pytest.mark.parametrize("pattern,shape", [
    ((1, 0), (2, 3)),
    (("x", 0, "x", 1), (2, 3)),
    ((1,), (1, 4)),
    (("x",), ()),
    ((0, 2, 1), (2, 3, 4)),
])
def test_grad_more_patterns(pattern: tuple, shape: tuple) -> None:
    rng = np.random.default_rng(5)
    verify_grad(lambda x: T.sin(x.dimshuffle(*pattern)), [rng.standard_normal(shape)])


def test_grad_restores_input_type_and_sums_broadcast() -> None:
    x = T.tensor("float32", shape=(None, 3), name="x")
    y = T.fmatrix("y")
    # x.T is (3, ?); inserting an axis makes it (3, 1, ?) and broadcasting against y (?, ?)
    # repeats it, so the gradient must sum that repetition back.
    out = (x.T.dimshuffle(0, "x", 1) * y).sum()
    gx = graphc.grad(out, x)
    assert gx.dtype == "float32" and gx.type.shape == (None, 3)
    vx = np.arange(6, dtype="float32").reshape(2, 3)
    vy = np.ones((5, 2), "float32")
    got = run([x, y], gx, vx, vy)
    np.testing.assert_allclose(got, np.full((2, 3), 5.0, "float32"))


def test_second_derivative_through_transpose() -> None:
    x = T.dmatrix("x")
    g = graphc.grad((x.T**3).sum(), x)
    gg = graphc.grad(g.sum(), x)
    v = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(run([x], gg, v), 6 * v)
