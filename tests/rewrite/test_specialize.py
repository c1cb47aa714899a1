"""Specialization: Gemm, pow forms, x * -1, division by a constant."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.rewrite import Gemm
from tests.rewrite.helpers import REF_NONE, op_names, rewrite_and_compare

NOFUSE = graphc.Mode(backend="py", excluding=["fusion"])


def _f32(rng, *shape):
    return rng.normal(size=shape).astype("float32")


def test_dot_plus_bias_is_gemm(rng) -> None:
    x, w = T.matrix("x"), T.matrix("w")
    b = T.vector("b")
    f = rewrite_and_compare([x, w, b], T.dot(x, w) + b, [_f32(rng, 4, 3), _f32(rng, 3, 5), _f32(rng, 5)],
                            mode=NOFUSE)
    assert op_names(f) == ["DimShuffle", "Gemm"]
    vx, vw, vb = _f32(rng, 4, 3), _f32(rng, 3, 5), _f32(rng, 5)
    np.testing.assert_array_equal(f(vx, vw, vb), graphc.function([x, w, b], T.dot(x, w) + b,
                                                                   mode=REF_NONE)(vx, vw, vb))


def test_scaled_dot_updates_are_gemm(rng) -> None:
    x, g = T.matrix("x"), T.matrix("g")
    w = graphc.shared(_f32(rng, 3, 2), name="w")
    step = graphc.function([x, g], [], updates=[(w, w - 0.1 * T.dot(x.T, g))], mode=NOFUSE)
    assert "Gemm" in op_names(step)
    start = w.get_value()
    vx, vg = _f32(rng, 4, 3), _f32(rng, 4, 2)
    step(vx, vg)
    np.testing.assert_allclose(w.get_value(), start - 0.1 * vx.T @ vg, rtol=1e-5)
    a = T.matrix("a")
    f = rewrite_and_compare([x, g, a], T.dot(x.T, g) * 2.0 - a, [vx, vg, _f32(rng, 3, 2)], mode=NOFUSE)
    assert op_names(f).count("Gemm") == 1


def test_gemv_and_dot_reused_elsewhere(rng) -> None:
    m, v, c = T.matrix("m"), T.vector("v"), T.vector("c")
    f = rewrite_and_compare([m, v, c], T.dot(m, v) + c, [_f32(rng, 3, 4), _f32(rng, 4), _f32(rng, 3)],
                            mode=NOFUSE)
    assert op_names(f) == ["Gemm"]
    d = T.dot(m, m.T)
    f = rewrite_and_compare([m], [d + 1, d], [_f32(rng, 3, 4)], mode=NOFUSE)
    assert "Gemm" not in op_names(f)  # the product is needed on its own anyway


def test_mixed_dtypes_are_not_gemm(rng) -> None:
    x, w = T.dmatrix("x"), T.fmatrix("w")
    b = T.fvector("b")
    f = rewrite_and_compare([x, w, b], T.dot(x, w) + b,
                            [rng.normal(size=(2, 3)), _f32(rng, 3, 2), _f32(rng, 2)], mode=NOFUSE)
    assert "Gemm" not in op_names(f)


def test_gemm_op_gradient() -> None:
    graphc.gradient.verify_grad(
        lambda c, a, b: Gemm()(c, T.constant(np.float64(0.5)), a, b, T.constant(np.float64(2.0))),
        [np.ones((2, 3)), np.arange(8.0).reshape(2, 4) / 8, np.arange(12.0).reshape(4, 3) / 12],
    )


@pytest.mark.parametrize("power,expected", [(2, ["sqr"]), (0.5, ["sqrt"]), (-0.5, ["sqrt", "true_div"])])
def test_pow_specializations(power, expected, rng) -> None:
    x = T.vector("x")
    f = rewrite_and_compare([x], x ** power, [np.abs(_f32(rng, 5)) + 0.1], mode=NOFUSE)
    assert op_names(f) == expected


def test_integer_square(rng) -> None:
    i = T.ivector("i")
    f = rewrite_and_compare([i], i ** 2, [np.array([-3, 4], "int32")], mode=NOFUSE)
    assert op_names(f) == ["sqr"]


def test_mul_minus_one_and_div_by_constant(rng) -> None:
    x = T.vector("x")
    f = rewrite_and_compare([x], x * -1, [_f32(rng, 5)], mode=NOFUSE)
    assert op_names(f) == ["neg"]
    f = rewrite_and_compare([x], x / 4.0, [_f32(rng, 5)], mode=NOFUSE)
    assert op_names(f) == ["mul"]
    m = T.tensor("float32", (3, 4), "m")
    f = rewrite_and_compare([m], m.mean(), [_f32(rng, 3, 4)], mode=NOFUSE)
    assert op_names(f) == ["Reduce", "mul"]  # sum * (1 / n)


def test_argmax_of_softmax(rng) -> None:
    x = T.matrix("x")
    v = _f32(rng, 4, 5)
    f = rewrite_and_compare([x], T.argmax(T.nnet.softmax(x), axis=1), [v], mode=NOFUSE)
    assert op_names(f) == ["Argmax"]
    f = rewrite_and_compare([x], T.argmax(T.nnet.softmax(x), axis=0), [v], mode=NOFUSE)
    assert op_names(f) == ["Softmax", "Argmax"]


def test_softmax_reuses_log_softmax(rng) -> None:
    x, y = T.matrix("x"), T.ivector("y")
    p = T.nnet.softmax(x)
    cost = T.nnet.categorical_crossentropy(p, y).mean()
    # (without the rewrite into CrossentropySoftmax, whose own output is then reused)
    f = rewrite_and_compare([x, y], [cost, graphc.grad(cost, x)],
                            [_f32(rng, 3, 4), np.array([0, 3, 1], "int32")],
                            mode=graphc.Mode(backend="py", excluding=["local_crossentropy_softmax"]))
    assert "Softmax" not in op_names(f) and op_names(f).count("LogSoftmax") == 1


def test_alpha_dot_plus_beta_z(rng) -> None:
    a, b, z = T.matrix("a"), T.matrix("b"), T.matrix("z")
    vals = [_f32(rng, 3, 4), _f32(rng, 4, 2), _f32(rng, 3, 2)]
    for out in (0.5 * T.dot(a, b) + 0.9 * z, 0.9 * z - 0.5 * T.dot(a, b), T.dot(a, b) * 2 - z * 3):
        f = rewrite_and_compare([a, b, z], out, vals, mode=NOFUSE)
        assert op_names(f) == ["Gemm"]
