"""Tests for graphc.ops.nnet (T.nnet): activations, softmax, cross-entropies."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.gradient import verify_grad
from graphc.ops.elemwise import Elemwise, ScalarOp
from graphc.ops.registry import OPS


def run(inputs, outputs):
    return graphc.function(inputs, outputs, mode="PY")


# ---------------------------------------------------------------------------------------
# NumPy references
def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


ELEMWISE_REFS = {
    "sigmoid": (T.nnet.sigmoid, np_sigmoid),
    "hard_sigmoid": (T.nnet.hard_sigmoid, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "softplus": (T.nnet.softplus, lambda x: np.log1p(np.exp(x))),
    "softsign": (T.nnet.softsign, lambda x: x / (1 + np.abs(x))),
    "relu": (T.nnet.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (lambda x: T.nnet.relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": (T.nnet.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_alpha": (lambda x: T.nnet.elu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
}


@pytest.mark.parametrize("name", sorted(ELEMWISE_REFS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 1, 3)])
def test_elementwise_against_numpy(name, dtype, shape, rng):
    fn, ref = ELEMWISE_REFS[name]
    x = T.tensor(dtype, shape=(None,) * len(shape))
    y = fn(x)
    assert y.dtype == dtype
    assert y.type.shape == (None,) * len(shape)
    xv = (rng.standard_normal(shape) * 4).astype(dtype)
    out = run([x], y)(xv)
    assert out.dtype == dtype and out.shape == shape
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, ref(xv.astype("float64")), rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("name", ["sigmoid", "hard_sigmoid", "softplus", "softsign", "elu"])
def test_int_inputs_become_float(name):
    x = T.ivector("x")
    y = getattr(T.nnet, name)(x)
    assert y.dtype == "float64"  # int32 upgrades to float64, as Theano's rule says
    b = T.bvector("b")
    assert getattr(T.nnet, name)(b).dtype == "float32"
    out = run([x], y)(np.array([-3, 0, 3], "int32"))
    assert out.dtype == np.float64


def test_relu_int_stays_int_and_static_shape():
    x = T.tensor("int32", shape=(2, 3))
    y = T.nnet.relu(x)
    assert y.dtype == "int32" and y.type.shape == (2, 3)
    np.testing.assert_array_equal(run([x], y)(np.array([[-1, 2, 0], [3, -4, 5]], "int32")),
                                  [[0, 2, 0], [3, 0, 5]])
    assert T.nnet.relu(x, 0.5).dtype == "float64"


def test_activations_are_scalar_ops():
    x = T.matrix("x")
    for fn in (T.nnet.sigmoid, T.nnet.hard_sigmoid, T.nnet.softplus, T.nnet.softsign,
               T.nnet.relu, T.nnet.elu):
        node = fn(x).owner
        assert isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, ScalarOp)
    assert T.nnet.relu(x, 0.1).owner.op == T.nnet.relu(x, 0.1).owner.op
    assert T.nnet.relu(x, 0.1).owner.op != T.nnet.relu(x, 0.2).owner.op


def test_relu_symbolic_alpha():
    x, a = T.dvector("x"), T.dscalar("a")
    out = run([x, a], T.nnet.relu(x, a))(np.array([-2.0, 3.0]), 0.25)
    np.testing.assert_allclose(out, [-0.5, 3.0])


@pytest.mark.parametrize("alpha", [0.0, 0.3, -0.5])
def test_relu_gradient_reads_output_unless_alpha_negative(alpha):
    """With alpha >= 0 the gradient tests the output (so a fused forward kernel need not
    keep the pre-activation); a negative alpha flips the output's sign, so it tests x."""
    x = T.dvector("x")
    h = T.nnet.relu(x, alpha)
    (g,) = graphc.grad(h.sum(), [x])
    from graphc.graph.basic import io_toposort

    (gt_node,) = [n for n in io_toposort([g]) if getattr(n.op, "scalar_op", None)
                  and n.op.scalar_op.name == "gt"]
    assert gt_node.inputs[0] is (h if alpha >= 0 else x)
    xv = np.array([-2.0, -0.0, 0.0, 1e-300, -1e-300, 3.0, np.nan])
    got = graphc.function([x], g, mode="PY")(xv)
    want = np.where(xv > 0, 1.0, alpha)
    np.testing.assert_array_equal(got, want)
    fast = graphc.function([x], g)(xv)
    np.testing.assert_array_equal(fast, want)


def test_broadcasting_inside_activation_graph():
    x, r = T.matrix("x"), T.row("r")
    y = T.nnet.sigmoid(x + r)
    assert y.type.shape == (None, None)
    xv = np.arange(6, dtype="float32").reshape(2, 3) / 3
    rv = np.array([[0.5, -1.0, 2.0]], "float32")
    np.testing.assert_allclose(run([x, r], y)(xv, rv), np_sigmoid(xv + rv), rtol=1e-6)


def test_elementwise_stability_for_large_inputs():
    x = T.dvector("x")
    f = run([x], [T.nnet.sigmoid(x), T.nnet.softplus(x), T.nnet.elu(x)])
    big = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s, sp, e = f(big)
    np.testing.assert_allclose(s, [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(sp, [0, 0, np.log(2), 800, 1e4])
    np.testing.assert_allclose(e, [-1, -1, 0, 800, 1e4])
    g = run([x], graphc.grad(T.nnet.softplus(x).sum() + T.nnet.elu(x).sum(), x))(big)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [0, 0, 1.5, 2, 2])


def test_float32_softplus_does_not_overflow():
    x = T.fvector("x")
    out = run([x], T.nnet.softplus(x))(np.array([100.0, 1000.0], "float32"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [100.0, 1000.0])


# ---------------------------------------------------------------------------------------
# softmax / log_softmax
@pytest.mark.parametrize("shape,axis", [((5,), -1), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1),
                                        ((2, 3, 4), -1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_against_numpy(shape, axis, dtype, rng):
    x = T.tensor(dtype, shape=shape)
    sm, lsm = T.nnet.softmax(x, axis=axis), T.nnet.log_softmax(x, axis=axis)
    assert sm.dtype == lsm.dtype == dtype
    assert sm.type.shape == lsm.type.shape == shape
    xv = rng.standard_normal(shape).astype(dtype)
    a, b = run([x], [sm, lsm])(xv)
    assert a.dtype == b.dtype == dtype
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(a, np_softmax(xv.astype("float64"), axis), rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(b, np_log_softmax(xv.astype("float64"), axis), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(a.sum(axis=axis), 1.0, rtol=rtol * 10)


def test_softmax_stable_for_large_inputs():
    x = T.matrix("x")
    xv = np.array([[1000.0, 1000.0, 999.0], [-1e4, 0.0, 1e4], [1e30, 1e30, 1e30]], "float32")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        sm, lsm = run([x], [T.nnet.softmax(x), T.nnet.log_softmax(x)])(xv)
    assert np.all(np.isfinite(sm)) and np.all(np.isfinite(lsm))
    np.testing.assert_allclose(sm.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(sm[0], np_softmax(np.array([1.0, 1.0, 0.0])), rtol=1e-6)
    np.testing.assert_allclose(lsm[1], [-2e4, -1e4, 0.0], rtol=1e-6)


def test_softmax_int_input_and_errors():
    x = T.imatrix("x")
    assert T.nnet.softmax(x).dtype == "float64"
    with pytest.raises(TypeError):
        T.nnet.softmax(T.scalar())
    with pytest.raises(ValueError):
        T.nnet.softmax(T.matrix(), axis=2)


def test_softmax_static_shape_preserved():
    x = T.tensor("float32", shape=(None, 10))
    assert T.nnet.softmax(x).type.shape == (None, 10)
    assert T.nnet.log_softmax(x, axis=0).type.shape == (None, 10)


# ---------------------------------------------------------------------------------------
# cross-entropies
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_categorical_crossentropy_onehot_vs_int_labels(dtype, rng):
    x = T.tensor(dtype, shape=(None, 5))
    y = T.ivector("y")
    onehot = T.tensor(dtype, shape=(None, 5))
    p = T.nnet.softmax(x)
    by_label = T.nnet.categorical_crossentropy(p, y)
    by_onehot = T.nnet.categorical_crossentropy(p, onehot)
    assert by_label.dtype == by_onehot.dtype == dtype
    assert by_label.ndim == by_onehot.ndim == 1
    xv = rng.standard_normal((4, 5)).astype(dtype)
    yv = np.array([0, 4, 2, 2], "int32")
    ov = np.eye(5, dtype=dtype)[yv]
    a, b = run([x, y, onehot], [by_label, by_onehot])(xv, yv, ov)
    expected = -np.log(np_softmax(xv.astype("float64"))[np.arange(4), yv])
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(a, expected, rtol=rtol)
    np.testing.assert_allclose(b, expected, rtol=rtol)
    # The gradients agree too.
    ga = run([x, y], graphc.grad(by_label.mean(), x))(xv, yv)
    gb = run([x, onehot], graphc.grad(by_onehot.mean(), x))(xv, ov)
    np.testing.assert_allclose(ga, gb, rtol=rtol * 10, atol=1e-7)
    np.testing.assert_allclose(ga, (np_softmax(xv.astype("float64")) - ov) / 4, rtol=1e-4, atol=1e-6)


def test_categorical_crossentropy_soft_targets_and_int_onehot():
    p, t = T.dmatrix("p"), T.dmatrix("t")
    pv = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    tv = np.array([[0.1, 0.1, 0.8], [1.0, 0.0, 0.0]])
    out = run([p, t], T.nnet.categorical_crossentropy(p, t))(pv, tv)
    np.testing.assert_allclose(out, -(tv * np.log(pv)).sum(axis=1))
    ti = T.lmatrix("ti")
    ce = T.nnet.categorical_crossentropy(p, ti)
    assert ce.dtype == "float64"
    onehot = np.array([[0, 0, 1], [1, 0, 0]], "int64")
    np.testing.assert_allclose(run([p, ti], ce)(pv, onehot), -np.log([0.5, 0.6]))


def test_categorical_crossentropy_3d_labels():
    p = T.dtensor3("p")
    y = T.lmatrix("y")
    pv = np_softmax(np.random.default_rng(0).standard_normal((2, 3, 4)))
    yv = np.array([[0, 1, 3], [2, 2, 0]])
    out = run([p, y], T.nnet.categorical_crossentropy(p, y))(pv, yv)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, -np.log(np.take_along_axis(pv, yv[..., None], -1)[..., 0]))


def test_categorical_crossentropy_errors():
    p = T.dmatrix("p")
    with pytest.raises(TypeError):
        T.nnet.categorical_crossentropy(p, T.dvector("y"))  # float labels
    with pytest.raises(TypeError):
        T.nnet.categorical_crossentropy(p, T.dscalar("y"))
    y = T.lvector("y")
    f = run([p, y], T.nnet.categorical_crossentropy(p, y))
    with pytest.raises(ValueError, match="labels"):
        f(np.full((2, 3), 1 / 3), [0, 3])
    with pytest.raises(ValueError, match="labels"):
        f(np.full((2, 3), 1 / 3), [0, 1, 2])
    with pytest.raises(ValueError):
        T.nnet.categorical_crossentropy(T.tensor("float64", shape=(3, 4)), T.tensor("int64", shape=(2,)))


@pytest.mark.parametrize("odtype,tdtype", [("float32", "float32"), ("float64", "float64"),
                                           ("float32", "int8"), ("float64", "float32")])
def test_binary_crossentropy(odtype, tdtype, rng):
    o = T.tensor(odtype, shape=(None, 3))
    t = T.tensor(tdtype, shape=(None, None))
    out = T.nnet.binary_crossentropy(T.nnet.sigmoid(o), t)
    assert out.dtype == np.result_type(odtype, tdtype if tdtype[0] == "f" else odtype).name
    assert out.type.shape == (None, 3)
    ov = rng.standard_normal((4, 3)).astype(odtype)
    tv = (rng.uniform(size=(4, 3)) > 0.5).astype(tdtype)
    res = run([o, t], out)(ov, tv)
    s = np_sigmoid(ov.astype("float64"))
    expected = -(tv * np.log(s) + (1 - tv) * np.log(1 - s))
    np.testing.assert_allclose(res, expected, rtol=1e-5 if "float32" in (odtype, tdtype) else 1e-12)


def test_binary_crossentropy_broadcast_target():
    o, t = T.dmatrix("o"), T.dvector("t")
    ov = np.array([[0.1, 0.9], [0.4, 0.5]])
    tv = np.array([1.0, 0.0])
    out = run([o, t], T.nnet.binary_crossentropy(o, t))(ov, tv)
    np.testing.assert_allclose(out, -(tv * np.log(ov) + (1 - tv) * np.log(1 - ov)))


def test_second_order_softmax():
    # Hessian of a softmax cross-entropy w.r.t. the logits is diag(p) - p p^T.
    x = T.dvector("x")
    cost = T.nnet.categorical_crossentropy(T.nnet.softmax(x.dimshuffle("x", 0)),
                                           T.constant(np.array([1], "int64"))).sum()
    h = run([x], graphc.gradient.hessian(cost, x))
    xv = np.array([0.3, -1.0, 2.0])
    p = np_softmax(xv)
    np.testing.assert_allclose(h(xv), np.diag(p) - np.outer(p, p), atol=1e-10)


# ---------------------------------------------------------------------------------------
# Gradients: every differentiable nnet name, checked against finite differences.
_R = np.random.default_rng(7)


def _away_from_kinks(shape, kinks=(0.0,), margin=0.2):
    x = _R.uniform(-3, 3, size=shape)
    for k in kinks:
        close = np.abs(x - k) < margin
        x[close] = k + np.copysign(margin + 0.1, x[close] - k + 1e-12)
    return x


_PROBS = np_softmax(_R.standard_normal((3, 4)))
_LABELS = np.array([1, 3, 0])

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "sigmoid": (T.nnet.sigmoid, [_R.standard_normal((3, 4)) * 2]),
    "hard_sigmoid": (T.nnet.hard_sigmoid, [_away_from_kinks((3, 4), (-2.5, 2.5))]),
    "softplus": (T.nnet.softplus, [_R.standard_normal((2, 5)) * 3]),
    "softsign": (T.nnet.softsign, [_away_from_kinks((5,))]),
    "relu": (lambda x: T.nnet.relu(x) + T.nnet.relu(x, 0.3), [_away_from_kinks((3, 3))]),
    "elu": (lambda x: T.nnet.elu(x, 0.7), [_away_from_kinks((4, 3))]),
    "softmax": (lambda x: T.nnet.softmax(x) + T.nnet.softmax(x, axis=0),
                [_R.standard_normal((3, 4))]),
    "log_softmax": (lambda x: T.nnet.log_softmax(x) * T.nnet.log_softmax(x, axis=0),
                    [_R.standard_normal((3, 4))]),
    "categorical_crossentropy": (
        lambda p, t: T.nnet.categorical_crossentropy(p, t)
        + T.nnet.categorical_crossentropy(p, T.constant(_LABELS)),
        [_PROBS, _R.uniform(0, 1, size=(3, 4))]),
    "binary_crossentropy": (T.nnet.binary_crossentropy,
                            [_R.uniform(0.1, 0.9, size=(3, 2)), _R.uniform(0, 1, size=(3, 2))]),
    # Targets that are not distributions (rows not summing to 1) check the exact gradient
    # softmax * sum(t) - t; the labels' form and the softmax output are used too.
    "crossentropy_softmax": (
        lambda x, t, r: T.nnet.crossentropy_softmax(x, t)
        + T.nnet.crossentropy_softmax(x, T.constant(_LABELS)) * 0.5
        + T.nnet.crossentropy_softmax(x, r)
        + (T.nnet.CrossentropySoftmax()(x, T.constant(_LABELS))[1] ** 2).sum(axis=1),
        [_R.standard_normal((3, 4)) * 2, _R.uniform(0, 1, size=(3, 4)), _R.uniform(0, 1, size=(1, 4))]),
    "sigmoid_binary_crossentropy": (
        lambda x, t, r: T.nnet.sigmoid_binary_crossentropy(x, t) + T.nnet.sigmoid_binary_crossentropy(x, r),
        [_R.standard_normal((3, 2)) * 3, _R.uniform(0, 1, size=(3, 2)), _R.uniform(0, 1, size=(2,))]),
}


def test_grad_cases_cover_the_family():
    names = {n for n, info in OPS.items() if info.family == "nnet" and info.differentiable}
    assert names == set(GRAD_CASES)


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_verify_grad(name):
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


def test_grad_of_grad_through_softmax_and_labels():
    # Second derivatives exercise the gradients' own gradients (LabelScatter -> LabelPick).
    def second(x):
        p = T.nnet.softmax(x)
        cost = T.nnet.categorical_crossentropy(p, T.constant(_LABELS)).sum()
        return graphc.grad(cost, x) * T.nnet.log_softmax(x)

    verify_grad(second, [_R.standard_normal((3, 4))])

    def second_elementwise(x):
        cost = (T.nnet.sigmoid(x) + T.nnet.softplus(x) + T.nnet.elu(x) + T.nnet.softsign(x)).sum()
        return graphc.grad(cost, x)

    verify_grad(second_elementwise, [_away_from_kinks((6,))])


def test_grad_of_grad_of_the_crossentropy_ops():
    def second(x, t):
        cost = T.nnet.crossentropy_softmax(x, T.constant(_LABELS)).sum() \
            + T.nnet.crossentropy_softmax(x, t).sum() + T.nnet.sigmoid_binary_crossentropy(x, t).sum()
        return graphc.grad(cost, x) * x

    verify_grad(second, [_R.standard_normal((3, 4)), _R.uniform(0, 1, size=(3, 4))])


# ---------------------------------------------------------------------------------------
# The cross-entropy ops of logits
def np_xent(x, t):
    lsm = np_log_softmax(x.astype("float64"))
    if t.ndim == 1:
        return -lsm[np.arange(len(t)), t]
    return -(t * lsm).sum(axis=1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 5), (1, 3), (6, 1), (0, 4), (3, 10)])
def test_crossentropy_softmax_against_numpy(dtype, shape, rng):
    x = T.tensor(dtype, shape=(None, shape[1]))
    y, t = T.lvector("y"), T.tensor(dtype, shape=(None, None))
    row = T.tensor(dtype, shape=(1, None))
    op = T.nnet.CrossentropySoftmax()
    outs = [*op(x, y), *op(x, t), op(x, row)[0]]
    assert outs[0].type.shape == (None,) and outs[1].type.shape == (None, shape[1])
    assert all(o.dtype == dtype for o in outs)
    xv = (rng.standard_normal(shape) * 5).astype(dtype)
    yv = rng.integers(0, shape[1], shape[0])
    tv = rng.uniform(size=shape).astype(dtype)
    rv = rng.uniform(size=(1, shape[1])).astype(dtype)
    got = run([x, y, t, row], outs)(xv, yv, tv, rv)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    want = [np_xent(xv, yv), np_softmax(xv.astype("float64")), np_xent(xv, tv),
            np_softmax(xv.astype("float64")), np_xent(xv, np.broadcast_to(rv, shape))]
    for g, w in zip(got, want):
        assert g.dtype == dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, **tol)


def test_crossentropy_softmax_static_shapes_and_errors():
    op = T.nnet.CrossentropySoftmax()
    x = T.tensor("float32", shape=(None, 10))
    assert op(x, T.tensor("int64", shape=(8,)))[0].type.shape == (8,)
    assert op(x, T.tensor("float32", shape=(5, 1)))[0].type.shape == (5,)
    assert op(x, T.tensor("float32", shape=(5, 1)))[1].type.shape == (None, 10)
    with pytest.raises(ValueError):
        op(T.tensor("float32", shape=(3, 4)), T.tensor("int64", shape=(2,)))
    with pytest.raises(ValueError):
        op(x, T.tensor("float32", shape=(None, 4)))
    with pytest.raises(TypeError):
        op(x, T.fvector())  # float labels
    with pytest.raises(TypeError):
        op(T.fvector(), T.lvector())
    with pytest.raises(TypeError):
        op(x, T.dmatrix())  # the targets' dtype must be the logits'
    assert T.nnet.crossentropy_softmax(x, T.dmatrix()).dtype == "float32"  # the function casts
    y = T.lvector("y")
    f = run([x, y], T.nnet.crossentropy_softmax(x, y))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        f(np.zeros((2, 10), "float32"), [0, 10])
    with pytest.raises(ValueError, match="labels"):
        f(np.zeros((2, 10), "float32"), [0, 1, 2])
    m = T.matrix("m")
    g = run([m, y], T.nnet.crossentropy_softmax(m, y))
    with pytest.raises(ValueError, match="no class"):
        g(np.zeros((2, 0), "float32"), [0, 0])
    tm = T.matrix("tm")
    h = run([m, tm], T.nnet.crossentropy_softmax(m, tm))
    with pytest.raises(ValueError, match="broadcast"):
        h(np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32"))


def test_crossentropy_ops_are_finite_at_1000():
    x, y, t = T.dmatrix("x"), T.lvector("y"), T.dmatrix("t")
    xv = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0]])
    yv = np.array([1, 2])
    tv = np.eye(3)[[1, 0]]
    cost = T.nnet.crossentropy_softmax(x, y).sum() + T.nnet.crossentropy_softmax(x, t).sum() \
        + T.nnet.sigmoid_binary_crossentropy(x, t).sum()
    for mode in ("PY", "FAST_RUN", "NONE"):
        c, g = graphc.function([x, y, t], [cost, graphc.grad(cost, x)], mode=mode)(xv, yv, tv)
        assert np.isfinite(c) and np.all(np.isfinite(g))
        want = np_xent(xv, yv).sum() + np_xent(xv, tv).sum() + (np.logaddexp(0, xv) - tv * xv).sum()
        assert want == 10000 + 2 * np.log(2)
        np.testing.assert_allclose(c, want)
        sm = np_softmax(xv)
        sig = np.where(xv > 0, 1.0, np.where(xv < 0, 0.0, 0.5))
        np.testing.assert_allclose(g, (sm - np.eye(3)[yv]) + (sm - tv) + (sig - tv), atol=1e-12)


@pytest.mark.parametrize("xdtype,tdtype", [("float32", "float32"), ("float64", "float64"),
                                           ("float32", "int8"), ("float32", "float64"),
                                           ("int32", "bool")])
def test_sigmoid_binary_crossentropy_against_numpy(xdtype, tdtype, rng):
    x = T.tensor(xdtype, shape=(None, 3))
    t = T.tensor(tdtype, shape=(None, None))
    out = T.nnet.sigmoid_binary_crossentropy(x, t)
    xf = "float64" if xdtype == "int32" else xdtype
    expected_dtype = np.result_type(xf, tdtype if tdtype.startswith("float") else xf).name
    assert out.dtype == expected_dtype and out.type.shape == (None, 3)
    xv = (rng.standard_normal((4, 3)) * 30).astype(xdtype)
    tv = (rng.uniform(size=(4, 3)) > 0.5).astype(tdtype)
    res = run([x, t], out)(xv, tv)
    x64, t64 = xv.astype("float64"), tv.astype("float64")
    np.testing.assert_allclose(res, np.logaddexp(0, x64) - t64 * x64,
                               rtol=1e-5 if expected_dtype == "float32" else 1e-12, atol=1e-6)
    assert res.dtype == expected_dtype


def test_sigmoid_binary_crossentropy_keeps_tiny_losses():
    # t = 1 and a large x: softplus(x) - x would cancel to 0; the op keeps exp(-x).
    x, t = T.dvector("x"), T.dvector("t")
    out = run([x, t], T.nnet.sigmoid_binary_crossentropy(x, t))(np.array([40.0, -40.0]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(out, [np.exp(-40.0)] * 2, rtol=1e-12)


def test_binary_crossentropy_of_sigmoid_builds_the_op():
    x, t = T.matrix("x"), T.matrix("t")
    out = T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t)
    assert out.owner.op.scalar_op.name == "sigmoid_binary_crossentropy"
    assert out.owner.inputs[0] is x
