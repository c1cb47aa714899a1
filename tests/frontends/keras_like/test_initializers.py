"""Initializer statistics against their definitions; names, seeds, config round trips."""

import math

import numpy as np
import pytest

from frontends.keras_like import initializers as I

SHAPE = (400, 300)  # fan_in 400, fan_out 300: 120 000 draws for tight statistics


def _check(values, mean, var, rel=0.03):
    assert values.shape == SHAPE
    assert values.dtype == np.float32
    assert abs(values.mean() - mean) < 0.01 * math.sqrt(var) + 1e-3
    assert values.var() == pytest.approx(var, rel=rel)


@pytest.mark.parametrize("name, scale, fan, dist", [
    ("glorot_uniform", 1.0, 350, "uniform"),
    ("glorot_normal", 1.0, 350, "normal"),
    ("he_uniform", 2.0, 400, "uniform"),
    ("he_normal", 2.0, 400, "normal"),
    ("lecun_uniform", 1.0, 400, "uniform"),
    ("lecun_normal", 1.0, 400, "normal"),
])
def test_variance_scaling_family(name, scale, fan, dist):
    values = I.get(name)(SHAPE)
    var = scale / fan
    _check(values, 0.0, var)
    if dist == "uniform":
        limit = math.sqrt(3 * var)
        assert values.max() <= limit and values.min() >= -limit
        assert values.max() > 0.99 * limit
    else:  # truncated at two (untruncated) standard deviations of the rescaled normal
        assert np.abs(values).max() <= 2 * math.sqrt(var) / 0.87962566103423978 + 1e-6


def test_variance_scaling_modes_and_conv_fans():
    values = I.VarianceScaling(scale=3.0, mode="fan_out", distribution="untruncated_normal")(SHAPE)
    _check(values, 0.0, 3.0 / 300)
    assert I.compute_fans((3, 3, 16, 32)) == (144.0, 288.0)
    assert I.compute_fans((7,)) == (7.0, 7.0)


def test_uniform_normal_truncated():
    u = I.get("uniform")(SHAPE)
    assert u.min() >= -0.05 and u.max() <= 0.05
    _check(u, 0.0, 0.1 ** 2 / 12)
    _check(I.get("normal")(SHAPE), 0.0, 0.05 ** 2)
    t = I.TruncatedNormal(mean=1.0, stddev=0.5)(SHAPE)
    assert np.abs(t - 1.0).max() <= 1.0
    # variance of a normal truncated at two standard deviations: 0.7737 sigma^2
    _check(t, 1.0, 0.7737413 * 0.25)
    r = I.RandomUniform(minval=2.0, maxval=4.0)(SHAPE)
    assert 2.0 <= r.min() and r.max() <= 4.0


def test_constants_identity_orthogonal():
    assert np.all(I.get("zero")((3, 2)) == 0) and np.all(I.get("zeros")((3,)) == 0)
    assert np.all(I.get("one")((2, 2)) == 1) and np.all(I.get("ones")((4,)) == 1)
    assert np.all(I.Constant(2.5)((2, 3)) == 2.5)
    np.testing.assert_array_equal(I.get("identity")((4, 4)), np.eye(4))
    np.testing.assert_array_equal(I.Identity(gain=3.0)((2, 3)), 3 * np.eye(2, 3))
    for shape in ((6, 6), (10, 4), (4, 10)):
        q = I.get("orthogonal")(shape).astype(np.float64)
        small = min(shape)
        gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    q = I.Orthogonal(gain=2.0)((5, 5)).astype(np.float64)
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(5), atol=1e-4)


def test_seeds_make_runs_reproducible():
    a = I.GlorotUniform(seed=7)((5, 5))
    b = I.GlorotUniform(seed=7)((5, 5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, I.GlorotUniform(seed=8)((5, 5)))
    from frontends.keras_like import backend as K

    K.set_random_seed(3)
    c = I.get("he_normal")((4, 4))
    K.set_random_seed(3)
    np.testing.assert_array_equal(c, I.get("he_normal")((4, 4)))


def test_lookup_config_and_errors():
    init = I.get({"class_name": "VarianceScaling",
                  "config": {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform"}})
    assert (init.scale, init.mode, init.distribution) == (2.0, "fan_avg", "uniform")
    assert I.serialize(init)["config"]["scale"] == 2.0
    assert isinstance(I.get("GlorotUniform"), I.GlorotUniform)
    assert I.get(None) is None
    with pytest.raises(ValueError, match="unknown initializer"):
        I.get("glorot_unifrom")
    with pytest.raises(ValueError):
        I.Orthogonal()((5,))
    assert I.get("he_normal")((3, 3), dtype="float64").dtype == np.float64


def test_keras1_style_callable_initializer():
    def my_init(shape, name=None):
        return np.full(shape, 0.5)

    assert I.make_value(my_init, (2, 2), "float32").dtype == np.float32
    with pytest.raises(ValueError, match="returned shape"):
        I.make_value(lambda shape: np.zeros(3), (2, 2), "float32")
