"""Reductions against NumPy: values, dtypes, static shapes, errors and gradients."""

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.gradient import verify_grad
from graphc.ops.registry import OPS


def run(inputs, outputs):
    return graphc.function(inputs, outputs, mode="PY")


def static_of(shape, known: bool):
    return shape if known else (None,) * len(shape)


AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (), (0, 1, 2)]
NUMPY = {
    "sum": np.sum, "prod": np.prod, "mean": np.mean, "max": np.max, "min": np.min,
    "all": np.all, "any": np.any, "var": np.var, "std": np.std,
}


def _data(rng, dtype, shape=(2, 3, 4)):
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    return (rng.standard_normal(shape) * 0.9).astype(dtype)


@pytest.mark.parametrize("name", list(NUMPY))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int8"])
@pytest.mark.parametrize("known", [True, False])
def test_reductions_match_numpy(rng, name, dtype, known):
    data = _data(rng, dtype)
    x = T.tensor(dtype, shape=static_of(data.shape, known), name="x")
    outs, expected = [], []
    for axis in AXES:
        for keepdims in (False, True):
            outs.append(getattr(T, name)(x, axis, keepdims=keepdims))
            expected.append(NUMPY[name](data, axis=axis, keepdims=keepdims))
    got = run([x], outs)(data)
    for out, g, e in zip(outs, got, expected):
        e = np.asarray(e)
        assert out.dtype == e.dtype.name, (name, dtype, out.dtype, e.dtype)
        assert g.dtype == e.dtype and g.shape == e.shape
        static = out.type.shape
        assert len(static) == e.ndim
        if known:
            assert static == e.shape
        else:
            # Only the axes that keepdims re-inserts are statically known.
            assert all(s in (None, 1) for s in static)
        tol = 1e-5 if g.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)


def test_methods_forward_to_reductions(rng):
    data = rng.standard_normal((3, 4)).astype("float32")
    x = T.fmatrix("x")
    outs = [x.sum(axis=1, keepdims=True), x.mean(0), x.max(), x.min(-1), x.prod(axis=(0, 1)),
            x.argmax(axis=1), x.argmin(), x.var(axis=0, ddof=1), x.std(keepdims=True),
            (x > 0).all(axis=1), (x > 0).any()]
    exp = [data.sum(1, keepdims=True), data.mean(0), data.max(), data.min(-1), data.prod((0, 1)),
           data.argmax(1), data.argmin(), data.var(0, ddof=1), data.std(keepdims=True),
           (data > 0).all(1), (data > 0).any()]
    for out, g, e in zip(outs, run([x], outs)(data), exp):
        assert g.dtype == np.asarray(e).dtype and out.dtype == g.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "int64", "uint8", "float32", "float64"])
def test_sum_and_prod_dtype_follow_numpy(rng, dtype):
    data = _data(rng, dtype, (3, 4)) if dtype != "uint8" else rng.integers(0, 4, (3, 4)).astype(dtype)
    x = T.tensor(dtype, shape=(3, 4))
    s, p, m = T.sum(x, axis=0), T.prod(x, axis=1), T.mean(x)
    assert s.dtype == data.sum(axis=0).dtype.name
    assert p.dtype == data.prod(axis=1).dtype.name
    assert m.dtype == data.mean().dtype.name
    gs, gp, gm = run([x], [s, p, m])(data)
    np.testing.assert_array_equal(gs, data.sum(axis=0))
    np.testing.assert_array_equal(gp, data.prod(axis=1))
    np.testing.assert_allclose(gm, data.mean(), rtol=1e-6)


def test_sum_dtype_argument(rng):
    data = rng.standard_normal((2, 5)).astype("float32")
    x = T.fmatrix("x")
    s = x.sum(axis=1, dtype="float64")
    b = T.sum(T.bmatrix("b"), dtype="int8")
    assert s.dtype == "float64" and b.dtype == "int8"
    np.testing.assert_allclose(run([x], s)(data), data.sum(1, dtype="float64"))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (2, 0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_argmin(rng, axis, keepdims):
    data = rng.integers(0, 5, size=(3, 4, 2)).astype("float32")  # ties: first index wins
    x = T.ftensor3("x")
    outs = [T.argmax(x, axis, keepdims=keepdims), T.argmin(x, axis, keepdims=keepdims)]
    got = run([x], outs)(data)
    for fn, out, g in zip((np.argmax, np.argmin), outs, got):
        if axis is None or isinstance(axis, int):
            e = fn(data, axis=axis, keepdims=keepdims)
        else:  # NumPy takes one axis: move the reduced ones last and flatten them.
            ax = sorted(a % 3 for a in axis)
            kept = [i for i in range(3) if i not in ax]
            flat = np.transpose(data, kept + ax).reshape([data.shape[i] for i in kept] + [-1])
            e = fn(flat, axis=-1)
            if keepdims:
                e = np.expand_dims(e, tuple(ax))
        assert out.dtype == "int64" and g.dtype == np.int64
        np.testing.assert_array_equal(g, e)
        assert len(out.type.shape) == np.ndim(e)


def test_mean_var_of_unknown_shapes_use_runtime_size(rng):
    x = T.dtensor3("x")
    outs = [x.mean(axis=(0, 2)), x.var(axis=1, ddof=1), x.std(axis=None, ddof=2)]
    for shape in [(2, 3, 4), (1, 5, 2)]:
        data = rng.standard_normal(shape)
        got = run([x], outs)(data)
        np.testing.assert_allclose(got[0], data.mean(axis=(0, 2)))
        np.testing.assert_allclose(got[1], data.var(axis=1, ddof=1))
        np.testing.assert_allclose(got[2], data.std(ddof=2))


def test_static_shapes_of_results():
    x = T.tensor("float32", shape=(2, None, 4))
    assert T.sum(x, 1).type.shape == (2, 4)
    assert T.sum(x, 1, keepdims=True).type.shape == (2, 1, 4)
    assert T.mean(x, (0, -1)).type.shape == (None,)
    assert T.max(x).type.shape == ()
    assert T.argmax(x, -1, keepdims=True).type.shape == (2, None, 1)
    assert T.var(x, 0, keepdims=True).type.shape == (1, None, 4)


@pytest.mark.parametrize("bad", [2, -3, (0, 0), (0, -2)])
def test_bad_axes_raise_at_build_time(bad):
    x = T.matrix("x")
    with pytest.raises(ValueError, match="axis"):
        T.sum(x, bad)
    with pytest.raises(ValueError, match="axis"):
        T.argmax(x, bad)


def test_max_of_zero_length_axis_raises_at_build_time():
    x = T.tensor("float64", shape=(0, 3))
    with pytest.raises(ValueError, match="zero-size"):
        T.max(x, 0)
    assert T.sum(x, 0).type.shape == (3,)


def test_max_gradient_goes_to_all_ties():
    x = T.dmatrix("x")
    g = graphc.grad(T.max(x, axis=1).sum(), x)
    data = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    np.testing.assert_array_equal(run([x], g)(data), [[0, 1, 1], [1, 0, 0]])


def test_prod_gradient_with_zeros():
    x = T.dmatrix("x")
    g = graphc.grad(T.prod(x, axis=1).sum(), x)
    data = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    expected = [[0, 6, 0], [0, 0, 0], [8, 4, 2]]
    np.testing.assert_array_equal(run([x], g)(data), expected)


def test_integer_reductions_have_no_gradient_to_ints():
    x = T.dvector("x")
    i = T.ivector("i")
    cost = (T.sum(i) * x).sum() + T.cast(T.argmax(x), "float64")
    g = graphc.grad(cost, x)
    np.testing.assert_allclose(run([x, i], g)(np.array([1.0, 2.0]), np.array([3, 4], "int32")), [7, 7])


def test_registered_names():
    for name in ("sum", "prod", "mean", "max", "min", "var", "std"):
        assert OPS[name].family == "reduce" and OPS[name].differentiable
    for name in ("argmax", "argmin", "all", "any"):
        assert OPS[name].family == "reduce" and not OPS[name].differentiable


_r = np.random.default_rng(7)
_X = _r.standard_normal((3, 4))
_X3 = _r.standard_normal((2, 3, 2))
_POS = _r.uniform(0.5, 1.5, (3, 4))

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "sum": (lambda x: T.sum(x, axis=(0, -1), keepdims=True) * T.sum(x), [_X3]),
    "prod": (lambda x: T.prod(x, axis=1), [_POS]),
    "mean": (lambda x: T.mean(x, axis=0) + T.mean(x, keepdims=True), [_X]),
    "max": (lambda x: T.max(x, axis=1, keepdims=True) + T.max(x), [_X]),
    "min": (lambda x: T.min(x, axis=(0, 2)), [_X3]),
    "var": (lambda x: T.var(x, axis=-1, ddof=1), [_X]),
    "std": (lambda x: T.std(x, axis=0, keepdims=True), [_X]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients(name):
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


@pytest.mark.parametrize("reduction", [
    lambda x: T.var(x, axis=1).sum(),
    lambda x: T.prod(x, axis=0).sum(),
    lambda x: T.mean(x * x),
])
def test_gradients_of_gradients(reduction):
    verify_grad(lambda x: graphc.grad(reduction(x), x), [_POS[:2, :3]])
