"""Tests for graphc.ops.random (T.random): streams, reproducibility, distributions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.compile.shared import SharedVariable
from graphc.gradient import NullTypeGradError
from graphc.ops.random import RandomVariable, generator_for_state, philox_words, standard_normal
from graphc.ops.registry import OPS

# Random ops are not differentiable: no gradient cases in this family.
GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {}


def run(inputs, outputs, **kwargs):
    return graphc.function(inputs, outputs, mode="PY", **kwargs)


def test_registered_not_differentiable():
    for name in ("uniform", "normal", "binomial"):
        assert OPS[name].family == "random" and not OPS[name].differentiable


@pytest.mark.parametrize("method,kwargs,dtype", [
    ("uniform", {}, "float32"),
    ("uniform", {"dtype": "float64"}, "float64"),
    ("normal", {}, "float32"),
    ("normal", {"dtype": "float64"}, "float64"),
    ("binomial", {}, "int64"),
    ("binomial", {"dtype": "int8"}, "int8"),
    ("binomial", {"dtype": "float32"}, "float32"),
])
@pytest.mark.parametrize("size", [(), (4,), (2, 3), (2, 1, 3)])
def test_dtype_and_static_shape(method, kwargs, dtype, size):
    srng = T.random.RandomStream(1)
    sample = getattr(srng, method)(size, **kwargs)
    assert sample.dtype == dtype
    assert sample.type.shape == size
    out = run([], sample)()
    assert out.dtype == dtype and out.shape == size


def test_default_dtype_follows_floatx():
    old = graphc.config.floatX
    try:
        graphc.config.floatX = "float64"
        assert T.random.RandomStream(0).uniform((2,)).dtype == "float64"
    finally:
        graphc.config.floatX = old


def test_stream_advances_each_call():
    srng = T.random.RandomStream(42)
    u = srng.uniform((5,))
    f = run([], u)
    a, b, c = f(), f(), f()
    assert not np.array_equal(a, b) and not np.array_equal(b, c)
    (state, new_state), = srng.updates()
    assert isinstance(state, SharedVariable) and state.dtype == "uint64"
    assert state.default_update is new_state
    assert state.get_value()[1] == 3


def test_each_variable_has_its_own_stream_and_shared_between_functions():
    srng = T.random.RandomStream(3)
    u1, u2 = srng.uniform((4,)), srng.uniform((4,))
    a, b = run([], [u1, u2])()
    assert not np.array_equal(a, b)
    # Two functions using the same variable advance the same stream.
    f, g = run([], u1), run([], u1 * 1)
    assert not np.array_equal(f(), g())
    # The same variable used twice in one function is one draw.
    x, y = run([], [u1, u1 + 0])()
    np.testing.assert_array_equal(x, y)


def test_reproducible_with_same_seed():
    def draws(seed):
        srng = T.random.RandomStreams(seed)
        f = run([], [srng.uniform((3,)), srng.normal((2, 2)), srng.binomial((5,), p=0.3)])
        return [f() for _ in range(3)]

    for xs, ys in zip(draws(7), draws(7)):
        for x, y in zip(xs, ys):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(draws(7)[0][0], draws(8)[0][0])


def test_reseed_restarts_streams():
    srng = T.random.RandomStream(5)
    f = run([], srng.normal((4,)))
    first = [f(), f()]
    srng.seed(5)
    np.testing.assert_array_equal(f(), first[0])
    np.testing.assert_array_equal(f(), first[1])
    srng.seed(6)
    assert not np.array_equal(f(), first[0])


def test_sample_is_pure_function_of_state():
    srng = T.random.RandomStream(11)
    u = srng.uniform((3,), dtype="float64")
    state, _ = srng.updates()[0]
    before = state.get_value()
    out = run([], u)()
    expected = generator_for_state(before).random((3,))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(state.get_value(), [before[0], before[1] + 1])


def test_no_default_updates_keeps_state():
    srng = T.random.RandomStream(2)
    f = run([], srng.uniform((3,)), no_default_updates=True)
    np.testing.assert_array_equal(f(), f())


def test_unseeded_streams_differ():
    a = run([], T.random.RandomStream().uniform((8,)))()
    b = run([], T.random.RandomStream().uniform((8,)))()
    assert not np.array_equal(a, b)


# ---------------------------------------------------------------------------------------
# distributions
N = 100_000


def test_uniform_distribution():
    srng = T.random.RandomStream(123)
    out = run([], srng.uniform((N,), low=-2.0, high=4.0, dtype="float64"))()
    assert out.min() >= -2.0 and out.max() < 4.0
    assert abs(out.mean() - 1.0) < 0.03
    assert abs(out.std() - 6 / np.sqrt(12)) < 0.03


def test_normal_distribution_and_loc_scale():
    srng = T.random.RandomStream(123)
    a = run([], srng.normal((N,), avg=3.0, std=2.0))()
    assert abs(a.mean() - 3.0) < 0.03 and abs(a.std() - 2.0) < 0.03
    b = run([], srng.normal((N,), loc=-1.0, scale=0.5, dtype="float64"))()
    assert abs(b.mean() + 1.0) < 0.01 and abs(b.std() - 0.5) < 0.01


def test_binomial_distribution():
    srng = T.random.RandomStream(123)
    bern = run([], srng.binomial((N,), p=0.3))()
    assert set(np.unique(bern)) <= {0, 1}
    assert abs(bern.mean() - 0.3) < 0.01
    many = run([], srng.binomial((N,), n=10, p=0.5, dtype="int32"))()
    assert many.dtype == np.int32 and many.max() <= 10
    assert abs(many.mean() - 5.0) < 0.05 and abs(many.var() - 2.5) < 0.1


def test_symbolic_params_broadcast():
    srng = T.random.RandomStream(9)
    lo = T.dvector("lo")
    u = srng.uniform((1000, 3), low=lo, high=lo + 1.0, dtype="float64")
    out = run([lo], u)(np.array([0.0, 10.0, -5.0]))
    assert out.shape == (1000, 3)
    assert np.all(out >= [0, 10, -5]) and np.all(out < [1, 11, -4])
    p = T.dmatrix("p")
    mask = srng.binomial(p=p, dtype="float64")  # size from the parameters
    assert mask.ndim == 2
    m = run([p], mask)(np.array([[0.0, 1.0], [1.0, 0.0]]))
    np.testing.assert_array_equal(m, [[0, 1], [1, 0]])


def test_symbolic_size_scalars():
    srng = T.random.RandomStream(4)
    n = T.lscalar("n")
    u = srng.uniform((n, 3))
    assert u.type.shape == (None, 3)
    f = run([n], u)
    assert f(5).shape == (5, 3) and f(2).shape == (2, 3)


def test_symbolic_size_shape_vector():
    srng = T.random.RandomStream(4)
    x = T.matrix("x")
    mask = srng.binomial(x.shape, p=0.5, dtype=x.dtype)
    assert mask.ndim == 2 and mask.dtype == x.dtype
    f = run([x], x * mask)
    xv = np.ones((6, 7), "float32")
    out = f(xv)
    assert out.shape == (6, 7) and set(np.unique(out)) <= {0.0, 1.0}
    assert not np.array_equal(out, f(xv))


def test_size_vector_of_unknown_length_needs_ndim():
    srng = T.random.RandomStream(4)
    v = T.lvector("v")
    with pytest.raises(ValueError, match="ndim"):
        srng.uniform(v)
    u = srng.uniform(v, ndim=2)
    assert u.ndim == 2
    assert run([v], u)(np.array([2, 5])).shape == (2, 5)
    with pytest.raises(ValueError):
        run([v], srng.uniform(v, ndim=2))(np.array([2, 5, 1]))


def test_bad_arguments():
    srng = T.random.RandomStream(4)
    with pytest.raises(TypeError):
        srng.uniform((2, 2.5))
    with pytest.raises(TypeError):
        srng.uniform(T.dscalar("s"))
    with pytest.raises(ValueError):
        run([], srng.binomial((3,), p=1.5))()
    with pytest.raises(ValueError):
        srng.uniform((3,), low=np.zeros((2, 3)))


def test_not_differentiable():
    srng = T.random.RandomStream(4)
    lo = T.dscalar("lo")
    u = srng.uniform((3,), low=lo, dtype="float64")
    with pytest.raises(NullTypeGradError):
        graphc.grad(u.sum(), lo)
    # A random mask multiplying a parameter is fine: only the parameter is differentiated.
    w = T.dvector("w")
    mask = srng.binomial((3,), p=0.5, dtype="float64")
    g = run([w], graphc.grad((w * mask).sum(), w))(np.ones(3))
    assert set(np.unique(g)) <= {0.0, 1.0}


def test_op_identity():
    a = RandomVariable("uniform", "float32", 2, "scalars")
    assert a == RandomVariable("uniform", "float32", 2, "scalars")
    assert a != RandomVariable("normal", "float32", 2, "scalars")


# ---------------------------------------------------------------------------------------
# the counter-based definition of the samples (what native kernels reproduce)
def _state_of(srng):
    return [s.get_value().copy() for s, _ in srng.updates()]


def test_normal_is_box_muller_of_the_state_words():
    srng = T.random.RandomStream(21)
    z = srng.normal((3, 5), avg=1.0, std=2.0, dtype="float64")
    (before,) = _state_of(srng)
    out = run([], z)()
    np.testing.assert_array_equal(out, 1.0 + 2.0 * standard_normal(before, 15).reshape(3, 5))
    # element i depends only on its index: a longer draw starts with the same numbers
    np.testing.assert_array_equal(standard_normal(before, 15), standard_normal(before, 40)[:15])
    assert np.all(np.isfinite(standard_normal(np.array([0, 0], np.uint64), 10_001)))


def test_binomial_counts_trials_of_the_state_streams():
    srng = T.random.RandomStream(22)
    b = srng.binomial((4, 6), n=3, p=0.4)
    (before,) = _state_of(srng)
    out = run([], b)()
    u = [(philox_words(before, 24, t) >> np.uint64(11)) * 2.0 ** -53 for t in range(3)]
    np.testing.assert_array_equal(out.reshape(-1), sum((x < 0.4).astype(np.int64) for x in u))
    # n = 1 is a uniform compared with p: the same words as uniform's
    srng2 = T.random.RandomStream(22)
    bern, unif = srng2.binomial((50,), p=0.3), srng2.uniform((50,), dtype="float64")
    (s_b, s_u) = _state_of(srng2)
    s_u[:] = s_b
    srng2.updates()[1][0].set_value(s_u)
    got_b, got_u = run([], [bern, unif])()
    np.testing.assert_array_equal(got_b, (got_u < 0.3).astype(np.int64))


def test_binomial_edge_parameters():
    srng = T.random.RandomStream(23)
    n, p = T.lvector("n"), T.dvector("p")
    f = run([n, p], srng.binomial((20, 4), n=n, p=p, dtype="int32"))
    out = f(np.array([0, 5, 5, 7]), np.array([0.5, 0.0, 1.0, 0.5]))
    assert out.dtype == np.int32 and out.shape == (20, 4)
    np.testing.assert_array_equal(out[:, :3], np.broadcast_to([0, 0, 5], (20, 3)))
    assert 0 <= out[:, 3].min() and out[:, 3].max() <= 7 and out[:, 3].std() > 0
    fn = run([p], srng.binomial((3,), n=T.as_tensor_variable(np.array([2.9, 1.0, 0.0])), p=p))
    assert fn(np.array([1.0, 1.0, 1.0])).tolist() == [2, 1, 0]  # float n truncates
    with pytest.raises(ValueError):
        f(np.array([0, 5, 5, 7]), np.array([0.5, np.nan, 1.0, 0.5]))
    with pytest.raises(ValueError):
        f(np.array([0, -5, 5, 7]), np.array([0.5, 0.5, 1.0, 0.5]))


def test_state_counter_wraps_and_key_is_kept():
    srng = T.random.RandomStream(24)
    u = srng.uniform((2,))
    (state, _), = srng.updates()
    state.set_value(np.array([77, 2**64 - 1], dtype=np.uint64))
    f = run([], u)
    a = f()
    np.testing.assert_array_equal(state.get_value(), [77, 0])
    b = f()
    np.testing.assert_array_equal(state.get_value(), [77, 1])
    assert not np.array_equal(a, b)


def test_parameters_must_fit_the_size():
    srng = T.random.RandomStream(25)
    lo = T.dvector("lo")
    f = run([lo], srng.uniform((2, 3), low=lo, high=lo + 1.0, dtype="float64"))
    assert f(np.zeros(3)).shape == (2, 3) and f(np.zeros(1)).shape == (2, 3)
    with pytest.raises(ValueError):
        f(np.zeros(2))
    g = run([lo], srng.normal((1,), avg=lo, dtype="float64"))
    with pytest.raises(ValueError):
        g(np.zeros(3))  # would broadcast the sample beyond its size
