"""dot, matmul, outer and tensordot against NumPy: values, dtypes, static shapes, errors, gradients."""

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.gradient import verify_grad
from graphc.ops.registry import OPS


def _data(rng, shape, dtype):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check(rng, fn, npfn, sa, sb, da="float64", db="float64", known=True):
    a, b = _data(rng, sa, da), _data(rng, sb, db)
    x = T.tensor(da, shape=sa if known else (None,) * len(sa), name="a")
    y = T.tensor(db, shape=sb if known else (None,) * len(sb), name="b")
    out = fn(x, y)
    got = graphc.function([x, y], out, mode="PY")(a, b)
    expected = np.asarray(npfn(a, b))
    assert out.dtype == expected.dtype.name and got.dtype == expected.dtype
    assert got.shape == expected.shape
    if known:
        assert out.type.shape == expected.shape
    else:
        assert len(out.type.shape) == expected.ndim
    tol = 1e-5 if expected.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


DOT_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((1, 3), (3, 1)),
    ((2, 2, 3), (3, 4)), ((2, 2, 3), (5, 3, 4)), ((2, 3, 4), (4,)), ((3,), (2, 3, 4)),
]
DTYPES = [("float32", "float32"), ("float64", "float32"), ("int32", "int32"), ("int8", "float32"),
          ("int64", "float64")]


@pytest.mark.parametrize("sa,sb", DOT_SHAPES)
@pytest.mark.parametrize("da,db", DTYPES)
@pytest.mark.parametrize("known", [True, False])
def test_dot_matches_numpy(rng, sa, sb, da, db, known):
    check(rng, T.dot, np.dot, sa, sb, da, db, known)


def test_dot_with_scalars_is_elementwise(rng):
    x = T.fmatrix("x")
    s = T.fscalar("s")
    data = rng.standard_normal((2, 3)).astype("float32")
    out = T.dot(x, s)
    assert out.dtype == "float32" and T.dot(x, 2.0).dtype == "float32"
    np.testing.assert_allclose(graphc.function([x, s], out, mode="PY")(data, 3.0), data * 3)


def test_dot_method_and_matmul_operator(rng):
    x, w = T.fmatrix("x"), T.fmatrix("w")
    a, b = rng.standard_normal((2, 3)).astype("float32"), rng.standard_normal((3, 4)).astype("float32")
    f = graphc.function([x, w], [x.dot(w), x @ w], mode="PY")
    for r in f(a, b):
        np.testing.assert_allclose(r, a @ b, rtol=1e-5)


MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
    ((2, 2, 3), (3, 4)), ((2, 3), (4, 3, 5)), ((2, 1, 2, 3), (5, 3, 4)), ((3,), (5, 3, 4)),
    ((2, 2, 3), (3,)), ((1, 2, 3), (4, 3, 2)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
@pytest.mark.parametrize("da,db", DTYPES[:4])
@pytest.mark.parametrize("known", [True, False])
def test_matmul_matches_numpy(rng, sa, sb, da, db, known):
    check(rng, T.matmul, np.matmul, sa, sb, da, db, known)


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((1,), (5,)), ((2,), (1,))])
@pytest.mark.parametrize("da,db", DTYPES[:3])
def test_outer_matches_numpy(rng, sa, sb, da, db):
    check(rng, T.outer, np.outer, sa, sb, da, db)


def test_outer_flattens_higher_ranks(rng):
    check(rng, T.outer, np.outer, (2, 2), (3,), known=False)


TENSORDOT_CASES = [
    ((2, 3, 4), (3, 4, 5), 2), ((2, 3), (3, 4), 1), ((2, 3), (4, 5), 0), ((3, 4), (3, 4), 2),
    ((2, 3, 4), (4, 3, 5), [[2, 1], [0, 1]]), ((3, 2, 4), (4, 3, 5), [[-1, 0], [0, -2]]),
    ((2, 3), (2, 4), [0, 0]), ((3,), (3,), 1),
]


@pytest.mark.parametrize("sa,sb,axes", TENSORDOT_CASES)
@pytest.mark.parametrize("da,db", DTYPES[:4])
@pytest.mark.parametrize("known", [True, False])
def test_tensordot_matches_numpy(rng, sa, sb, axes, da, db, known):
    check(rng, lambda a, b: T.tensordot(a, b, axes), lambda a, b: np.tensordot(a, b, axes),
          sa, sb, da, db, known)


@pytest.mark.parametrize("fn,sa,sb", [
    (T.dot, (2, 3), (4, 5)), (T.dot, (3,), (4,)), (T.dot, (2, 3), (4,)), (T.dot, (2, 2, 3), (4, 5)),
    (T.matmul, (2, 3), (4, 5)), (T.matmul, (5, 2, 3), (4, 3, 2)), (T.matmul, (2, 2, 3), (2, 4)),
    (lambda a, b: T.tensordot(a, b, 1), (2, 3), (4, 5)),
    (lambda a, b: T.tensordot(a, b, [[0], [1]]), (2, 3), (4, 5)),
])
def test_incompatible_static_shapes_raise_at_build_time(fn, sa, sb):
    a, b = T.tensor("float32", shape=sa), T.tensor("float32", shape=sb)
    with pytest.raises(ValueError) as info:
        fn(a, b)
    message = str(info.value)
    assert str(sa) in message and str(sb) in message


def test_bad_arguments():
    m = T.matrix("m")
    with pytest.raises(ValueError, match="scalar"):
        T.matmul(m, T.scalar("s"))
    with pytest.raises(ValueError, match="axes"):
        T.tensordot(m, m, [[0, 1], [0]])
    with pytest.raises(ValueError, match="out of bounds"):
        T.tensordot(m, m, [[2], [0]])
    with pytest.raises(ValueError, match="invalid"):
        T.tensordot(m, m, 3)


def test_runtime_shape_mismatch_names_the_op(rng):
    a, b = T.matrix("a"), T.matrix("b")
    f = graphc.function([a, b], T.dot(a, b), mode="PY")
    with pytest.raises(ValueError, match="dot"):
        f(np.zeros((2, 3), "float32"), np.zeros((4, 5), "float32"))


def test_matmul_gradient_sums_broadcast_batch_axes(rng):
    a = T.dtensor3("a")
    b = T.dmatrix("b")
    av, bv = rng.standard_normal((4, 2, 3)), rng.standard_normal((3, 5))
    gb = graphc.grad(T.matmul(a, b).sum(), b)
    assert gb.type.shape == (None, None)
    np.testing.assert_allclose(graphc.function([a, b], gb, mode="PY")(av, bv),
                               np.einsum("bij->j", av)[:, None].repeat(5, 1))


def test_registered_names():
    for name in ("dot", "matmul", "outer", "tensordot"):
        assert OPS[name].family == "linalg" and OPS[name].differentiable


_r = np.random.default_rng(11)
_N = _r.standard_normal

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "dot": (lambda a, b, c, v: T.dot(T.dot(a, b), c) + T.dot(v, c).dimshuffle("x", 0)
            + T.dot(c.T, v).sum() + T.dot(v, v),
            [_N((2, 3)), _N((3, 4)), _N((4, 2)), _N(4)]),
    "matmul": (lambda a, b, c: T.matmul(T.matmul(a, b), c),
               [_N((2, 1, 2, 3)), _N((3, 3, 2)), _N(2)]),
    "outer": (lambda a, b: T.outer(a, b), [_N(3), _N(4)]),
    "tensordot": (lambda a, b: T.tensordot(a, b, [[2, 0], [0, 1]]), [_N((3, 2, 4)), _N((4, 3, 2))]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients(name):
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


@pytest.mark.parametrize("fn,shapes", [
    (T.dot, [(3,), (3,)]), (T.dot, [(2, 3), (3,)]), (T.dot, [(3,), (3, 2)]),
    (T.dot, [(2, 2, 3), (2, 3, 2)]), (T.matmul, [(3,), (2, 3, 2)]), (T.matmul, [(2, 2, 3), (3,)]),
    (lambda a, b: T.tensordot(a, b, 0), [(2,), (3,)]),
    (lambda a, b: T.tensordot(a, b, [[0, 1], [1, 0]]), [(2, 3), (3, 2)]),
])
def test_gradients_more_shapes(fn, shapes):
    verify_grad(fn, [_N(s) for s in shapes])


def test_gradient_of_gradient():
    # d/dA of (grad of ||A x||^2 w.r.t. x) exercises the gradients of the gradient graph.
    verify_grad(lambda a, x: graphc.grad(T.sqr(T.dot(a, x)).sum(), x), [_N((2, 3)), _N(3)])
    verify_grad(lambda a, b: graphc.grad(T.sqr(T.matmul(a, b)).sum(), a), [_N((2, 2, 3)), _N((3, 2))])
