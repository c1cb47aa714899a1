"""Shape ops against NumPy: shape, reshape, flatten, concatenate, stack, alloc, zeros/ones, arange, eye."""

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.config import config
from graphc.gradient import verify_grad


def run(inputs, out, *values):
    return graphc.function(inputs, out, mode="PY", on_unused_input="ignore")(*values)


def _data(rng, shape, dtype):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _sym(shape, dtype, known):
    return T.tensor(dtype, shape=shape if known else (None,) * len(shape), name="x")


# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 0, 5)])
@pytest.mark.parametrize("known", [True, False])
def test_shape(rng, shape, known):
    x = _sym(shape, "float32", known)
    s = T.shape(x)
    assert s.dtype == "int64" and s.type.shape == (len(shape),)
    got = run([x], s, np.zeros(shape, "float32"))
    assert got.dtype == np.int64 and tuple(got) == shape
    assert x.shape.type.shape == (len(shape),)


def test_shape_index_is_a_scalar():
    x = T.tensor("float64", shape=(None, 3))
    assert x.shape[0].type.shape == () and x.shape[0].dtype == "int64"
    assert run([x], x.shape[-1], np.zeros((5, 3))) == 3
    assert run([x], x.shape[0], np.zeros((5, 3))) == 5


def test_shape_is_not_differentiable():
    x = T.vector("x")
    with pytest.raises(graphc.gradient.DisconnectedInputError):
        graphc.grad(T.cast(x.shape[0], "float32"), x)


# ---------------------------------------------------------------------------------------
RESHAPES = [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1)), ((2, 3, 4), (2, -1, 3)),
    ((6,), (1, 6, 1)), ((1,), ()), ((), (1, 1)), ((2, 0, 3), (0, 6)), ((12,), (3, 4)),
]


@pytest.mark.parametrize("xs,ns", RESHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("known", [True, False])
def test_reshape_constant_shape(rng, xs, ns, dtype, known):
    data = _data(rng, xs, dtype)
    x = _sym(xs, dtype, known)
    out = T.reshape(x, ns)
    expected = data.reshape(ns)
    assert out.dtype == dtype and out.ndim == expected.ndim
    if known:
        assert out.type.shape == expected.shape
    else:
        assert out.type.shape == tuple(None if n == -1 else n for n in ns)
    got = run([x], out, data)
    assert got.dtype == data.dtype
    np.testing.assert_array_equal(got, expected)


def test_reshape_method_and_int():
    x = T.tensor("float32", shape=(2, 3))
    assert x.reshape(6).type.shape == (6,)
    assert x.reshape((3, 2)).type.shape == (3, 2)
    assert x.reshape([-1, 1]).type.shape == (6, 1)


def test_reshape_symbolic_entries(rng):
    x = T.tensor("float64", shape=(None, 3, 4), name="x")
    a, b = T.lscalar("a"), T.iscalar("b")
    data = rng.standard_normal((5, 3, 4))
    out = T.reshape(x, (x.shape[0], -1))
    assert out.type.shape == (None, 12)
    np.testing.assert_array_equal(run([x], out, data), data.reshape(5, -1))
    out = T.reshape(x, (a, b, 2))
    assert out.type.shape == (None, None, 2)
    np.testing.assert_array_equal(run([x, a, b], out, data, 10, 3), data.reshape(10, 3, 2))
    np.testing.assert_array_equal(run([x, a, b], out, data, -1, 6), data.reshape(-1, 6, 2))
    # Statically known x: one symbolic entry is fixed by the total size.
    y = T.tensor("float64", shape=(6, 4))
    assert T.reshape(y, (a, 3)).type.shape == (8, 3)


def test_reshape_symbolic_vector(rng):
    x, y = T.matrix("x"), T.tensor3("y")
    out = T.reshape(x, y.shape)
    assert out.ndim == 3
    data = rng.standard_normal((4, 6)).astype("float32")
    np.testing.assert_array_equal(run([x, y], out, data, np.zeros((2, 3, 4), "float32")),
                                  data.reshape(2, 3, 4))
    v = T.lvector("v")
    with pytest.raises(ValueError, match="ndim"):
        T.reshape(x, v)
    out = T.reshape(x, v, ndim=2)
    assert out.type.shape == (None, None)
    np.testing.assert_array_equal(run([x, v], out, data, [3, 8]), data.reshape(3, 8))
    with pytest.raises(ValueError, match="length 3, expected 2"):
        run([x, v], out, data, [3, 4, 2])
    # A reshape to the static shape of another tensor is known.
    z = T.tensor("float32", shape=(3, 8))
    assert T.reshape(x, z.shape).type.shape == (3, 8)


def test_reshape_errors(rng):
    x = T.tensor("float32", shape=(2, 3))
    with pytest.raises(ValueError, match="cannot reshape"):
        T.reshape(x, (4, 2))
    with pytest.raises(ValueError, match="cannot reshape"):
        T.reshape(x, (4, -1))
    with pytest.raises(ValueError, match="only one"):
        T.reshape(x, (-1, -1))
    with pytest.raises(ValueError, match="invalid"):
        T.reshape(x, (-2, -3))
    with pytest.raises(TypeError):
        T.reshape(x, (2.0, 3))
    y = T.matrix("y")
    f = graphc.function([y], T.reshape(y, (4, -1)), mode="PY")
    with pytest.raises(ValueError, match="reshape"):
        f(np.zeros((2, 3), "float32"))


@pytest.mark.parametrize("xs,nd", [((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), 3), ((5,), 1),
                                   ((), 1), ((2, 3, 0, 4), 2)])
@pytest.mark.parametrize("known", [True, False])
def test_flatten(rng, xs, nd, known):
    data = _data(rng, xs, "float64")
    x = _sym(xs, "float64", known)
    out = T.flatten(x, nd) if nd != 1 else x.flatten()
    expected = data.reshape(xs[: nd - 1] + (-1,)) if xs else data.reshape(1)
    assert out.type.shape == (expected.shape if known or not xs else (None,) * nd)
    np.testing.assert_array_equal(run([x], out, data), expected)


def test_flatten_keeps_known_leading_dims():
    x = T.tensor("float32", shape=(None, 3, 4))
    assert x.flatten(2).type.shape == (None, 12)
    assert T.tensor("float32", shape=(5, None, 4)).flatten(2).type.shape == (5, None)
    with pytest.raises(ValueError):
        T.flatten(x, 4)
    with pytest.raises(ValueError):
        T.flatten(x, 0)


# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,axis", [
    ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 5)], 1), ([(2, 3), (2, 1)], -1),
    ([(3,), (0,), (2,)], 0), ([(2, 3, 4), (2, 3, 1)], 2),
])
@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("float32", "float64"), ("int32", "int64")])
@pytest.mark.parametrize("known", [True, False])
def test_concatenate(rng, shapes, axis, dtypes, known):
    data = [_data(rng, s, dtypes[k % 2]) for k, s in enumerate(shapes)]
    xs = [T.tensor(d.dtype, shape=d.shape if known else (None,) * d.ndim) for d in data]
    out = T.concatenate(xs, axis=axis)
    expected = np.concatenate(data, axis=axis)
    assert out.dtype == expected.dtype.name
    if known:
        assert out.type.shape == expected.shape
    got = run(xs, out, *data)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_concatenate_partial_static_and_errors():
    a = T.tensor("float32", shape=(None, 3))
    b = T.tensor("float32", shape=(2, None))
    assert T.concatenate([a, b]).type.shape == (None, 3)
    assert T.concatenate([a, b], axis=1).type.shape == (2, None)
    assert T.concatenate([a]) is a
    with pytest.raises(ValueError, match="do not match"):
        T.concatenate([a, T.tensor("float32", shape=(2, 4))])
    with pytest.raises(ValueError, match="axis"):
        T.concatenate([a, a], axis=2)
    with pytest.raises(ValueError):
        T.concatenate([T.scalar(), T.scalar()])
    with pytest.raises(TypeError):
        T.concatenate([a, T.vector()])
    with pytest.raises(ValueError):
        T.concatenate([])
    x, y = T.matrix("x"), T.matrix("y")
    f = graphc.function([x, y], T.concatenate([x, y]), mode="PY")
    with pytest.raises(ValueError, match="Join"):
        f(np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32"))


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("axis", [0, -1, 1])
def test_stack(rng, shape, axis):
    if axis == 1 and not shape:
        axis = 0
    data = [_data(rng, shape, "float64") for _ in range(3)]
    xs = [T.tensor("float64", shape=shape) for _ in data]
    out = T.stack(xs, axis=axis)
    expected = np.stack(data, axis=axis)
    assert out.type.shape == expected.shape and out.dtype == "float64"
    np.testing.assert_array_equal(run(xs, out, *data), expected)


def test_stack_mixed_and_from_list():
    a, b = T.iscalar("a"), T.fscalar("b")
    v = T.stack([a, b, 2])
    assert v.dtype == "float64" and v.type.shape == (3,)
    np.testing.assert_array_equal(run([a, b], v, 1, 0.5), [1.0, 0.5, 2.0])
    w = T.as_tensor_variable([a, 4, a])
    assert w.dtype == "int32" and w.type.shape == (3,)
    np.testing.assert_array_equal(run([a], w, 7), [7, 4, 7])
    with pytest.raises(ValueError, match="do not match"):
        T.stack([T.tensor("float32", shape=(2,)), T.tensor("float32", shape=(3,))])
    x, y = T.vector("x"), T.vector("y")
    f = graphc.function([x, y], T.stack([x, y]), mode="PY")
    with pytest.raises(ValueError, match="Stack"):
        f(np.zeros(2, "float32"), np.zeros(3, "float32"))


# ---------------------------------------------------------------------------------------
def test_alloc(rng):
    n = T.lscalar("n")
    v = T.tensor("float64", shape=(3,), name="v")
    out = T.alloc(v, n, 3)
    assert out.type.shape == (None, 3) and out.dtype == "float64"
    data = rng.standard_normal(3)
    np.testing.assert_array_equal(run([v, n], out, data, 4), np.broadcast_to(data, (4, 3)))
    s = T.alloc(np.float32(1.5), 2, 3)
    assert s.type.shape == (2, 3) and s.dtype == "float32"
    np.testing.assert_array_equal(run([], s), np.full((2, 3), 1.5, "float32"))
    c = T.alloc(T.tensor("int32", shape=(None, 1)), 4, 2, 5)
    assert c.type.shape == (4, 2, 5) and c.dtype == "int32"
    # The value's length fills an unknown target entry.
    assert T.alloc(v, n, n).type.shape == (None, 3)
    assert T.alloc(v, (2, 3)).type.shape == (2, 3)
    with pytest.raises(ValueError, match="broadcast"):
        T.alloc(v, 2, 4)
    with pytest.raises(ValueError):
        T.alloc(T.matrix(), 3)
    with pytest.raises(ValueError, match="negative"):
        T.alloc(v, -1, 3)
    f = graphc.function([v, n], T.alloc(v, 2, n), mode="PY")
    with pytest.raises(ValueError):
        f(data, 4)
    with pytest.raises(ValueError, match="negative"):
        f(data, -3)


@pytest.mark.parametrize("fn,npfn", [(T.zeros, np.zeros), (T.ones, np.ones)])
def test_zeros_ones(fn, npfn):
    out = fn((2, 3))
    assert out.dtype == config.floatX and out.type.shape == (2, 3)
    np.testing.assert_array_equal(run([], out), npfn((2, 3), config.floatX))
    out = fn(4, dtype="int32")
    assert out.dtype == "int32" and out.type.shape == (4,)
    np.testing.assert_array_equal(run([], out), npfn(4, "int32"))
    n = T.iscalar("n")
    x = T.matrix("x")
    out = fn((n, x.shape[1]), dtype="float64")
    assert out.dtype == "float64" and out.type.shape == (None, None)
    np.testing.assert_array_equal(run([n, x], out, 2, np.zeros((1, 5), "float32")),
                                  npfn((2, 5)))
    out = fn(x.shape)
    assert out.type.shape == (None, None)
    np.testing.assert_array_equal(run([x], out, np.zeros((3, 2), "float32")), npfn((3, 2)))
    assert fn(()).type.shape == ()
    with pytest.raises(TypeError):
        fn((2.5, 3))


# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [(5,), (2, 7), (7, 2, -2), (0,), (3, 3), (10, 0, -3), (-4, 4, 3)])
def test_arange_ints(args):
    out = T.arange(*args)
    expected = np.arange(*args)
    assert out.dtype == "int64" and out.type.shape == expected.shape
    np.testing.assert_array_equal(run([], out), expected)


def test_arange_floats_and_symbolic():
    out = T.arange(0.0, 1.0, 0.25)
    assert out.dtype == config.floatX and out.type.shape == (4,)
    np.testing.assert_allclose(run([], out), np.arange(0, 1, 0.25))
    n = T.iscalar("n")
    out = T.arange(n)
    assert out.dtype == "int32" and out.type.shape == (None,)
    np.testing.assert_array_equal(run([n], out, 5), np.arange(5))
    a, b = T.lscalar("a"), T.lscalar("b")
    out = T.arange(a, b, 2)
    assert out.dtype == "int64"
    np.testing.assert_array_equal(run([a, b], out, -3, 6), np.arange(-3, 6, 2))
    out = T.arange(b, a, -1)
    np.testing.assert_array_equal(run([a, b], out, -3, 6), np.arange(6, -3, -1))
    d = T.dscalar("d")
    out = T.arange(d, dtype="float32")
    assert out.dtype == "float32"
    np.testing.assert_allclose(run([d], out, 2.5), np.arange(2.5, dtype="float32"))
    x = T.tensor("float32", shape=(4, 2))
    assert T.arange(x.shape[0]).type.shape == (4,)
    f = graphc.function([a, b], T.arange(0, a, b), mode="PY")
    with pytest.raises(ValueError, match="step"):
        f(3, 0)
    with pytest.raises(ValueError, match="step"):
        T.arange(0, 3, 0)


@pytest.mark.parametrize("n,m,k", [(3, None, 0), (2, 4, 1), (4, 2, -1), (3, 3, 5), (0, None, 0)])
def test_eye(n, m, k):
    out = T.eye(n, m, k)
    expected = np.eye(n, m, k, dtype=config.floatX)
    assert out.dtype == config.floatX and out.type.shape == expected.shape
    np.testing.assert_array_equal(run([], out), expected)


def test_eye_symbolic():
    n, k = T.iscalar("n"), T.iscalar("k")
    out = T.eye(n, k=k, dtype="int64")
    assert out.dtype == "int64" and out.type.shape == (None, None)
    np.testing.assert_array_equal(run([n, k], out, 3, 1), np.eye(3, k=1, dtype="int64"))
    with pytest.raises(ValueError, match="negative"):
        run([n, k], out, -1, 0)


# ---------------------------------------------------------------------------------------
_R = np.random.default_rng(7)
_X = _R.standard_normal((2, 3, 4))
_M = _R.standard_normal((3, 4))
_V = _R.standard_normal(4)

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "reshape": (lambda x: T.reshape(x, (x.shape[0], -1)) * T.reshape(x, (4, 6))[:2].reshape((12,)),
                [_X]),
    "flatten": (lambda x: T.flatten(x, 2) ** 2 + x.flatten()[:12], [_X]),
    "concatenate": (lambda a, b: T.concatenate([a, b, a * 2.0], axis=1) ** 2, [_M, _M[:, :2]]),
    "stack": (lambda a, b: T.stack([a, b ** 2, a * b], axis=1), [_M, _M + 1.0]),
    "alloc": (lambda v, s: T.alloc(v, 3, 4) * T.alloc(s, 2, 1).sum() + T.alloc(v[None], 3, 4),
              [_V, _R.standard_normal(())]),
    "dimshuffle": (lambda x: x.dimshuffle(2, "x", 0, 1) ** 2, [_X]),
    "transpose": (lambda x: T.transpose(x, (1, 2, 0)) * x.T.sum(), [_X]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients(name):
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


def test_grad_of_reshape_keeps_static_shape():
    x = T.tensor("float64", shape=(2, 6))
    g = graphc.grad((x.reshape((3, 4)) ** 2).sum(), x)
    assert g.type.shape == (2, 6)
    data = np.arange(12.0).reshape(2, 6)
    np.testing.assert_allclose(run([x], g, data), 2 * data)
