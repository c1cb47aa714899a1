"""Stabilization: graph before -> after, values against NONE, and finiteness at |x| = 1000."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from tests.rewrite.helpers import REF, check_same, compile_both, op_names, rewrite_and_compare

NOFUSE = graphc.Mode(backend="py", excluding=["fusion"])
BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0], [3.0, 2.0, 1.0]], "float32")


def test_log1p_and_expm1(rng) -> None:
    x = T.vector("x")
    v = rng.uniform(-0.5, 0.5, size=7).astype("float32")
    f = rewrite_and_compare([x], T.log(1 + x), [v], mode=NOFUSE)
    assert op_names(f) == ["log1p"]
    f = rewrite_and_compare([x], T.log(x + 1), [v], mode=NOFUSE)
    assert op_names(f) == ["log1p"]
    f = rewrite_and_compare([x], T.log(1 - x), [v], mode=NOFUSE)
    assert op_names(f) == ["neg", "log1p"]
    f = rewrite_and_compare([x], T.exp(x) - 1, [v], mode=NOFUSE)
    assert op_names(f) == ["expm1"]
    tiny = np.array([1e-10], "float32")
    np.testing.assert_allclose(graphc.function([x], T.log(1 + x), mode=REF)(tiny), tiny, rtol=1e-6)
    np.testing.assert_allclose(graphc.function([x], T.exp(x) - 1, mode=REF)(tiny), tiny, rtol=1e-6)


def test_integer_log1p_is_not_rewritten() -> None:
    i = T.bvector("i")
    f = rewrite_and_compare([i], T.log(i + 1), [np.array([127, 1], "int8")], mode=NOFUSE)
    assert op_names(f) == ["add", "log"]  # int8 overflow of i + 1 must stay


def test_log_sigmoid(rng) -> None:
    x = T.matrix("x")
    moderate = rng.normal(size=(3, 3)).astype("float32")
    big64 = BIG.astype("float64")
    f = rewrite_and_compare([x], T.log(T.nnet.sigmoid(x)), [moderate], mode=NOFUSE)
    assert op_names(f) == ["neg", "softplus", "neg"]
    np.testing.assert_allclose(f(BIG), -np.logaddexp(0, -big64), rtol=1e-6)
    for out in (T.log(1 - T.nnet.sigmoid(x)), T.log1p(-T.nnet.sigmoid(x))):
        f = rewrite_and_compare([x], out, [moderate], mode=NOFUSE, rtol=1e-3)
        assert op_names(f) == ["softplus", "neg"]
        np.testing.assert_allclose(f(BIG), -np.logaddexp(0, big64), rtol=1e-6)


def _finite_cost_and_grad(cost, inputs, values, wrt):
    g = graphc.grad(cost, wrt)
    f = graphc.function(inputs, [cost, g], mode=REF)
    c, gv = f(*values)
    assert np.isfinite(c).all() and np.isfinite(gv).all()
    return c, gv


def test_log_softmax_is_stable_with_its_gradient() -> None:
    x = T.matrix("x")
    f = graphc.function([x], T.log(T.nnet.softmax(x)), mode=NOFUSE)
    assert op_names(f) == ["LogSoftmax"]
    expected = BIG - BIG.max(1, keepdims=True)
    expected = expected - np.log(np.exp(expected).sum(1, keepdims=True))
    np.testing.assert_allclose(f(BIG), expected, rtol=1e-5)
    _, g = _finite_cost_and_grad(T.log(T.nnet.softmax(x)).sum(), [x], [BIG], x)
    sm = np.exp(expected)
    np.testing.assert_allclose(g, 1 - 3 * sm, rtol=1e-5, atol=1e-6)


def test_categorical_crossentropy_of_softmax_is_stable() -> None:
    x, y, t = T.matrix("x"), T.ivector("y"), T.matrix("t")
    labels = np.array([0, 1, 2], "int32")
    onehot = np.eye(3, dtype="float32")[labels]
    lsm = BIG - BIG.max(1, keepdims=True)
    lsm = lsm - np.log(np.exp(lsm).sum(1, keepdims=True))
    expected_cost = -lsm[np.arange(3), labels].mean()
    expected_grad = (np.exp(lsm) - onehot) / 3
    for cost, inputs, values in [
        (T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean(), [x, y], [BIG, labels]),
        (T.nnet.categorical_crossentropy(T.nnet.softmax(x), t).mean(), [x, t], [BIG, onehot]),
    ]:
        c, g = _finite_cost_and_grad(cost, inputs, values, x)
        np.testing.assert_allclose(c, expected_cost, rtol=1e-5)
        np.testing.assert_allclose(g, expected_grad, rtol=1e-5, atol=1e-6)
        fast = graphc.function(inputs, cost, mode=NOFUSE)
        names = op_names(fast)
        assert "CrossentropySoftmax" in names and "Softmax" not in names and "LogSoftmax" not in names


def test_binary_crossentropy_of_sigmoid_is_stable() -> None:
    x, t = T.matrix("x"), T.matrix("t")
    targets = (np.arange(9).reshape(3, 3) % 2).astype("float32")
    cost = T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t).mean()
    c, g = _finite_cost_and_grad(cost, [x, t], [BIG, targets], x)
    x64 = BIG.astype("float64")
    expected = (np.logaddexp(0, x64) - targets * x64).mean()
    np.testing.assert_allclose(c, expected, rtol=1e-5)
    sig = np.exp(-np.logaddexp(0, -x64))
    np.testing.assert_allclose(g, (sig - targets) / 9, rtol=1e-5, atol=1e-7)
    f = graphc.function([x, t], cost, mode=NOFUSE)
    assert "sigmoid_binary_crossentropy" in op_names(f)
    assert not {"sigmoid", "softplus", "log", "log1p"} & set(op_names(f))


def test_log_sum_exp_subtracts_the_max() -> None:
    x = T.matrix("x")
    out = T.log(T.sum(T.exp(x), axis=1))
    fast, slow = compile_both([x], out, mode=NOFUSE)
    assert "max" in str([n.op for n in fast.fgraph.toposort()])
    small = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], "float32")
    check_same(fast, slow, small)
    np.testing.assert_allclose(fast(BIG), [1000.0, 1000.0, 3.40760596], rtol=1e-6)
    keep = T.log(T.sum(T.exp(x), axis=1, keepdims=True))
    f = graphc.function([x], keep, mode=REF)
    assert f(BIG).shape == (3, 1) and np.isfinite(f(BIG)).all()
    inf = np.array([[-np.inf, -np.inf], [np.inf, 0.0]], "float32")
    np.testing.assert_array_equal(fast(inf), [-np.inf, np.inf])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mul_cancels_divisions(dtype, rng) -> None:
    x, y = T.tensor(dtype, (None,), "x"), T.tensor(dtype, (None,), "y")
    f = rewrite_and_compare([x, y], (x / y) * y, [rng.normal(size=4).astype(dtype)] * 2, mode=NOFUSE)
    assert op_names(f) == ["second"]  # x broadcast to the shape of x / y
    f = rewrite_and_compare([x], (x / T.exp(x)) * T.exp(x), [rng.normal(size=4).astype(dtype)],
                            mode=NOFUSE)
    assert op_names(f) == ["exp"] or op_names(f) == []
    f = rewrite_and_compare([x, y], (x / y - x) * y, [rng.normal(size=4).astype(dtype)] * 2,
                            mode=NOFUSE)
    assert "true_div" not in op_names(f)


def test_cancel_keeps_the_broadcast_shape(rng) -> None:
    s, m = T.vector("s"), T.matrix("m")
    out = (s / m) * m  # s is broadcast up to m's shape
    f = rewrite_and_compare([s, m], out, [np.ones(3, "float32"), rng.normal(size=(2, 3)).astype("float32")],
                            mode=NOFUSE)
    assert f(np.ones(3, "float32"), np.ones((2, 3), "float32")).shape == (2, 3)
