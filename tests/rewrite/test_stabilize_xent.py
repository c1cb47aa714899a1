"""Rewrites into CrossentropySoftmax / sigmoid_binary_crossentropy and softmax from
exp(x)/sum(exp(x)): graph before -> after, values against the unrewritten function, and
finite values and gradients at |x| = 1000 in the reference and the native (default) mode."""

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.ops.nnet import LabelPick
from tests.rewrite.helpers import REF, REF_NONE, compile_both, op_names, rewrite_and_compare

NOFUSE = graphc.Mode(backend="py", excluding=["fusion"])
MODES = [REF, "FAST_RUN"]
BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 0.0, 1000.0], [3.0, 2.0, 1.0]], "float32")
LABELS = np.array([1, 0, 2], "int32")
ONEHOT = np.eye(3, dtype="float32")[LABELS]


def _softmax(x):
    x = x.astype("float64")
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x):
    x = x.astype("float64")
    s = x - x.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _check_finite(inputs, cost, wrt, values, expected_cost, expected_grad, rtol=1e-5):
    for mode in MODES:
        f = graphc.function(inputs, [cost, graphc.grad(cost, wrt)], mode=mode)
        c, g = f(*values)
        assert np.isfinite(c).all() and np.isfinite(g).all(), mode
        np.testing.assert_allclose(c, expected_cost, rtol=rtol)
        np.testing.assert_allclose(g, expected_grad, rtol=rtol, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Categorical cross-entropy of a softmax
def _label_forms(x, y):
    return {
        "graphc": T.nnet.categorical_crossentropy(T.nnet.softmax(x), y),
        "by hand": -T.log(LabelPick()(T.nnet.softmax(x), y)),
        "log_softmax": -LabelPick()(T.nnet.log_softmax(x), y),
    }


@pytest.mark.parametrize("form", ["graphc", "by hand", "log_softmax"])
def test_label_form_becomes_the_op(form, rng) -> None:
    x, y = T.matrix("x"), T.ivector("y")
    loss = _label_forms(x, y)[form]
    before = op_names(graphc.function([x, y], loss, mode=REF_NONE))
    assert "LabelPick" in before and "CrossentropySoftmax" not in before
    f = rewrite_and_compare([x, y], loss, [rng.normal(size=(4, 5)).astype("float32"),
                                           np.array([0, 4, 2, 2], "int32")], mode=NOFUSE)
    assert op_names(f) == ["CrossentropySoftmax"]
    cost = loss.mean()
    expected = -_log_softmax(BIG)[np.arange(3), LABELS].mean()
    _check_finite([x, y], cost, x, [BIG, LABELS], expected, (_softmax(BIG) - ONEHOT) / 3)


def _arange_forms(x, y):
    p = T.nnet.softmax(x)
    return {  # the Theano tutorial's negative log-likelihood, three ways
        "log then index": -T.log(p)[T.arange(y.shape[0]), y],
        "index then log": -T.log(p[T.arange(y.shape[0]), y]),
        "rows of x": -T.log(p)[T.arange(x.shape[0]), y],
    }


@pytest.mark.parametrize("form", ["log then index", "index then log", "rows of x"])
def test_arange_index_form_becomes_the_op(form, rng) -> None:
    x, y = T.matrix("x"), T.ivector("y")
    loss = _arange_forms(x, y)[form]
    before = op_names(graphc.function([x, y], loss, mode=REF_NONE))
    assert "Subtensor" in before and "ARange" in before
    vals = [rng.normal(size=(4, 5)).astype("float32"), np.array([0, 4, 2, 2], "int32")]
    f = rewrite_and_compare([x, y], [loss, graphc.grad(loss.mean(), x)], vals, mode=NOFUSE)
    names = op_names(f)
    assert "CrossentropySoftmax" in names and "LabelScatter" in names
    assert not {"Subtensor", "IncSubtensor", "Softmax", "LogSoftmax", "log", "exp"} & set(names), names
    expected = -_log_softmax(BIG)[np.arange(3), LABELS].mean()
    _check_finite([x, y], loss.mean(), x, [BIG, LABELS], expected, (_softmax(BIG) - ONEHOT) / 3)


def test_arange_index_lookalikes_are_left_alone(rng) -> None:
    x, y, z = T.matrix("x"), T.ivector("y"), T.vector("z")
    vals = [rng.normal(size=(3, 4)).astype("float32"), np.array([0, 3, 1], "int32"),
            np.zeros(3, "float32")]
    for loss in (-T.log(T.nnet.softmax(x))[T.arange(z.shape[0]), y],  # rows of an unrelated z
                 -T.log(T.nnet.sigmoid(x))[T.arange(y.shape[0]), y]):  # not a softmax
        f = rewrite_and_compare([x, y, z], loss, vals, mode=NOFUSE, on_unused_input="ignore")
        assert "Subtensor" in op_names(f) and "CrossentropySoftmax" not in op_names(f)


def _onehot_forms(x, t):
    return {
        "graphc": T.nnet.categorical_crossentropy(T.nnet.softmax(x), t),
        "by hand": -T.sum(t * T.log(T.nnet.softmax(x)), axis=1),
        "log_softmax": -T.sum(T.nnet.log_softmax(x) * t, axis=-1),
    }


@pytest.mark.parametrize("form", ["graphc", "by hand", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onehot_form_becomes_the_op(form, dtype, rng) -> None:
    x, t = T.tensor(dtype, (None, None), "x"), T.tensor(dtype, (None, None), "t")
    loss = _onehot_forms(x, t)[form]
    f = rewrite_and_compare([x, t], loss, [rng.normal(size=(4, 5)).astype(dtype),
                                           rng.uniform(size=(4, 5)).astype(dtype)], mode=NOFUSE)
    assert op_names(f) == ["CrossentropySoftmax"]
    big = BIG.astype(dtype)
    onehot = ONEHOT.astype(dtype)
    expected = -(onehot * _log_softmax(big)).sum(1).mean()
    _check_finite([x, t], loss.mean(), x, [big, onehot], expected, (_softmax(big) - onehot) / 3)


def test_onehot_form_with_weights_and_broadcast_targets(rng) -> None:
    x, t, w = T.matrix("x"), T.row("t"), T.col("w")
    loss = -T.sum(w * t * T.nnet.log_softmax(x), axis=1)
    vals = [rng.normal(size=(4, 5)).astype("float32"), rng.uniform(size=(1, 5)).astype("float32"),
            rng.uniform(size=(4, 1)).astype("float32")]
    f = rewrite_and_compare([x, t, w], [loss, *graphc.grad(loss.sum(), [x, t, w])], vals, mode=NOFUSE)
    assert "CrossentropySoftmax" in op_names(f)  # (log_softmax stays: the gradient for t)


def test_mixed_dtypes_and_other_axes_are_left_alone(rng) -> None:
    x, t = T.matrix("x"), T.dmatrix("t")
    f = rewrite_and_compare([x, t], -T.sum(t * T.nnet.log_softmax(x), axis=1),
                            [rng.normal(size=(3, 4)).astype("float32"), rng.uniform(size=(3, 4))],
                            mode=NOFUSE)
    assert "CrossentropySoftmax" not in op_names(f)  # float64 arithmetic on float32 logits
    x2 = T.matrix("x2")
    f = rewrite_and_compare([x2], -T.sum(T.nnet.log_softmax(x2, axis=0), axis=1),
                            [rng.normal(size=(3, 4)).astype("float32")], mode=NOFUSE)
    assert "CrossentropySoftmax" not in op_names(f)


def test_gradient_reuses_the_ops_softmax(rng) -> None:
    x, y, t = T.matrix("x"), T.ivector("y"), T.matrix("t")
    for loss, inputs, vals in [
        (T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean(), [x, y],
         [rng.normal(size=(4, 3)).astype("float32"), np.array([0, 2, 1, 1], "int32")]),
        (T.nnet.categorical_crossentropy(T.nnet.softmax(x), t).mean(), [x, t],
         [rng.normal(size=(4, 3)).astype("float32"), rng.uniform(size=(4, 3)).astype("float32")]),
        (-T.sum(t * T.nnet.log_softmax(x), axis=1).mean(), [x, t],
         [rng.normal(size=(4, 3)).astype("float32"), rng.uniform(size=(4, 3)).astype("float32")]),
    ]:
        f = rewrite_and_compare(inputs, [loss, graphc.grad(loss, x)], vals)
        names = op_names(f)
        assert names.count("CrossentropySoftmax") == 1
        assert not {"Softmax", "LogSoftmax", "exp", "log"} & set(names), names


# ---------------------------------------------------------------------------------------
# Binary cross-entropy of a sigmoid
def _bce_forms(x, t):
    s = T.nnet.sigmoid(x)
    return {
        "theano": -(t * T.log(s) + (1 - t) * T.log(1 - s)),
        "log1p": -t * T.log(s) - (1 - t) * T.log1p(-s),
        "reordered": -(T.log(1 - s) * (1 - t) + T.log(s) * t),
        "softplus": t * T.nnet.softplus(-x) + (1 - t) * T.nnet.softplus(x),
        "logits": T.nnet.softplus(-abs(x)) + T.maximum(x, 0.0) - x * t,
    }


@pytest.mark.parametrize("form", ["theano", "log1p", "reordered", "softplus", "logits"])
def test_binary_crossentropy_forms_become_the_op(form, rng) -> None:
    x, t = T.matrix("x"), T.matrix("t")
    loss = _bce_forms(x, t)[form]
    vals = [rng.normal(size=(3, 4)).astype("float32"), rng.uniform(size=(3, 4)).astype("float32")]
    f = rewrite_and_compare([x, t], loss, vals, mode=NOFUSE, rtol=1e-4)
    assert op_names(f) == ["sigmoid_binary_crossentropy"]
    targets = (np.arange(9).reshape(3, 3) % 2).astype("float32")
    big = BIG if form != "logits" else np.where(BIG == 0, 0.5, BIG).astype("float32")  # max's kink
    x64 = big.astype("float64")
    expected = (np.logaddexp(0, x64) - targets * x64).mean()
    sig = np.exp(-np.logaddexp(0, -x64))
    _check_finite([x, t], loss.mean(), x, [big, targets], expected, (sig - targets) / 9)


def test_binary_crossentropy_lookalikes_are_left_alone(rng) -> None:
    x, z, t = T.matrix("x"), T.matrix("z"), T.matrix("t")
    vals = [rng.normal(size=(2, 3)).astype("float32") for _ in range(2)] + [
        rng.uniform(size=(2, 3)).astype("float32")]
    for loss in (t * T.log(T.nnet.sigmoid(x)) + (1 - t) * T.log(1 - T.nnet.sigmoid(x)),  # sign
                 -(t * T.log(T.nnet.sigmoid(x)) + (1 - t) * T.log(1 - T.nnet.sigmoid(z))),  # two logits
                 -(t * T.log(T.nnet.sigmoid(x)) + t * T.log(1 - T.nnet.sigmoid(x)))):  # not 1 - t
        f = rewrite_and_compare([x, z, t], loss, vals, mode=NOFUSE, rtol=1e-4,
                                on_unused_input="ignore")
        assert "sigmoid_binary_crossentropy" not in op_names(f)


def test_binary_crossentropy_of_sigmoid_has_a_small_gradient_graph() -> None:
    x, t = T.matrix("x"), T.matrix("t")
    cost = T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t).mean()
    f = graphc.function([x, t], [cost, graphc.grad(cost, x)], mode=NOFUSE)
    names = op_names(f)
    assert names.count("sigmoid_binary_crossentropy") == 1 and names.count("sigmoid") == 1
    assert not {"log", "log1p", "softplus", "neg"} & set(names), names


# ---------------------------------------------------------------------------------------
# exp(x) / sum(exp(x)) and the gradient of log(sum(exp(x)))
@pytest.mark.parametrize("axis,keepdims", [(1, False), (1, True), (0, False), (None, False)])
def test_log_sum_exp_gradient_is_softmax(axis, keepdims, rng) -> None:
    x = T.matrix("x")
    lse = T.log(T.sum(T.exp(x), axis=axis, keepdims=keepdims))
    g = graphc.grad(lse.sum(), x)
    moderate = rng.normal(size=(3, 3)).astype("float32")
    f = rewrite_and_compare([x], g, [moderate], mode=NOFUSE)
    if axis is None:  # (a sum over both axes of a matrix is no softmax over one axis)
        return
    assert "exp" not in op_names(f) and "Softmax" in op_names(f)
    expected = _softmax(BIG) if axis == 1 else _softmax(BIG.T).T
    for mode in MODES:
        out = graphc.function([x], g, mode=mode)(BIG)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


def test_log_sum_exp_gradient_of_a_vector() -> None:
    v = T.vector("v")
    g = graphc.grad(T.log(T.sum(T.exp(v))), v)
    for mode in MODES:
        out = graphc.function([v], g, mode=mode)(np.array([1000.0, 0.0, -1000.0], "float32"))
        np.testing.assert_allclose(out, [1.0, 0.0, 0.0])


@pytest.mark.parametrize("keepdims", [False, True])
def test_softmax_written_out_becomes_the_op(keepdims, rng) -> None:
    x = T.matrix("x")
    s = T.sum(T.exp(x), axis=1, keepdims=keepdims)
    out = T.exp(x) / (s if keepdims else s.dimshuffle(0, "x"))
    f = rewrite_and_compare([x], out, [rng.normal(size=(3, 4)).astype("float32")], mode=NOFUSE)
    assert op_names(f) == ["Softmax"]
    for mode in MODES:
        np.testing.assert_allclose(graphc.function([x], out, mode=mode)(BIG), _softmax(BIG), rtol=1e-6)


def test_misaligned_ratio_is_not_softmax(rng) -> None:
    x = T.matrix("x")
    out = T.exp(x) / T.sum(T.exp(x), axis=1).dimshuffle("x", 0)  # divides by the column's row sum
    fast, slow = compile_both([x], out, mode=NOFUSE)
    assert "Softmax" not in op_names(fast)
    v = rng.normal(size=(3, 3)).astype("float32")
    np.testing.assert_allclose(fast(v), slow(v), rtol=1e-6)


def test_log_softmax_and_crossentropy_gradients_stay_finite() -> None:
    x, y = T.matrix("x"), T.ivector("y")
    lsm = _log_softmax(BIG)
    _check_finite([x], T.nnet.log_softmax(x).sum(), x, [BIG], lsm.sum(), 1 - 3 * np.exp(lsm))
    _check_finite([x], T.log(T.nnet.softmax(x)).sum(), x, [BIG], lsm.sum(), 1 - 3 * np.exp(lsm))
    cost = T.nnet.crossentropy_softmax(x, y).sum()
    _check_finite([x, y], cost, x, [BIG, LABELS], -lsm[np.arange(3), LABELS].sum(),
                  np.exp(lsm) - ONEHOT)


# ---------------------------------------------------------------------------------------
# keras_like: the training step of a model with these losses uses the ops
def _step_op_names(fn) -> set[str]:
    """Op names of a compiled function's graph, scalar ops inside fused nodes included."""
    names = set()
    for node in fn.fgraph.toposort():
        op = node.op
        names.add(op.scalar_op.name if type(op).__name__ == "Elemwise" else type(op).__name__)
        names |= {sop.name for sop, _, _ in getattr(op, "steps", ())}
    return names


@pytest.mark.parametrize("loss,last,n_out,op", [
    ("categorical_crossentropy", "softmax", 3, "CrossentropySoftmax"),
    ("sparse_categorical_crossentropy", "softmax", 3, "CrossentropySoftmax"),
    ("binary_crossentropy", "sigmoid", 1, "sigmoid_binary_crossentropy"),
])
def test_keras_like_losses_use_the_ops(loss, last, n_out, op) -> None:
    from frontends.keras_like.layers import Dense
    from frontends.keras_like.models import Sequential

    model = Sequential([Dense(8, activation="relu", input_dim=4), Dense(n_out, activation=last)])
    model.compile(loss=loss, optimizer="sgd", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(16, 4)).astype("float32") * 1000  # saturated outputs: still finite
    if loss.startswith("sparse"):
        ys = rng.integers(0, n_out, 16)
    elif last == "softmax":
        ys = np.eye(n_out, dtype="float32")[rng.integers(0, n_out, 16)]
    else:
        ys = (rng.uniform(size=(16, n_out)) > 0.5).astype("float32")
    hist = model.fit(xs, ys, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    names = _step_op_names(model._make_train_function())
    assert op in names
    assert not {"Softmax", "LogSoftmax", "clip", "log", "softplus"} & names, names
    assert np.isfinite(model.evaluate(xs, ys, verbose=0)).all()


def test_argmax_of_the_shared_softmax_reads_the_logits(rng) -> None:
    x, y = T.matrix("x"), T.ivector("y")
    p = T.nnet.softmax(x)
    cost = T.nnet.categorical_crossentropy(p, y).mean()
    vals = [rng.normal(size=(4, 3)).astype("float32"), np.array([0, 2, 1, 1], "int32")]
    f = rewrite_and_compare([x, y], [cost, graphc.grad(cost, x), T.argmax(p, axis=1)], vals)
    (am,) = [n for n in f.fgraph.toposort() if type(n.op).__name__ == "Argmax"]
    assert am.inputs[0] is f.fgraph.inputs[0]
