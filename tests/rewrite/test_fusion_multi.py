"""Fusion of values also used outside their region: one kernel writes them as extra outputs."""

import numpy as np

import graphc
import graphc.tensor as T
from graphc.rewrite import Fused
from tests.rewrite.helpers import REF, op_names, rewrite_and_compare


def _vals(rng, *shapes, dtype="float32"):
    return [rng.normal(size=s).astype(dtype) for s in shapes]


def test_bias_add_feeding_elu_and_its_gradient_is_one_kernel(rng) -> None:
    x = T.fmatrix("x")
    b = T.fvector("b")
    g = T.fmatrix("g")
    pre = x + b
    h = T.nnet.elu(pre)  # its gradient reads pre and h
    grad_pre = graphc.grad(None, pre, known_grads={h: g})
    f = rewrite_and_compare([x, b, g], [h * 2, grad_pre], _vals(rng, (4, 3), (3,), (4, 3)))
    fused = [n for n in f.fgraph.toposort() if isinstance(n.op, Fused)]
    assert any(len(n.outputs) >= 2 for n in fused)  # elu(add) and what reads add: one kernel
    assert "add" not in op_names(f)


def test_bias_add_feeding_relu_keeps_no_pre_activation(rng) -> None:
    x, w = T.fmatrix("x"), T.fmatrix("w")
    b = T.fvector("b")
    h = T.nnet.relu(x + b)  # its gradient reads h only
    loss = T.sqr(T.dot(h, w)).sum()  # h's gradient depends on h: a kernel after the forward one
    grad_x = graphc.grad(loss, x)
    f = rewrite_and_compare([x, b, w], [loss, grad_x], _vals(rng, (4, 3), (3,), (3, 2)))
    forward = [n for n in f.fgraph.toposort() if isinstance(n.op, Fused) and "relu" in str(n.op)]
    assert len(forward) == 1 and len(forward[0].outputs) == 1  # relu(x + b) only
    assert "add" not in op_names(f)


def test_use_leading_back_into_the_region_keeps_the_value_separate(rng) -> None:
    x, y = T.matrix("x"), T.matrix("y")
    e = T.exp(x)
    out = T.dot(e, y) + T.sin(e)  # dot(e) feeds the region's root: fusing e would make a cycle
    f = rewrite_and_compare([x, y], out, _vals(rng, (3, 3), (3, 3)),
                            mode=graphc.Mode(backend="py", excluding=["specialize"]))
    assert op_names(f).count("exp") == 1


def test_value_of_a_smaller_shape_stays_separate(rng) -> None:
    x = T.fmatrix("x")
    b = T.fvector("b")
    eb = T.exp(b)
    out = [T.tanh(x + eb), eb * 3]  # eb is a row: not the region's full shape
    f = rewrite_and_compare([x, b], out, _vals(rng, (4, 3), (3,)))
    assert sum(isinstance(n.op, Fused) for n in f.fgraph.toposort()) >= 1


def test_mlp_step_nodes_and_values(rng) -> None:
    x, y = T.fmatrix("x"), T.fmatrix("y")
    params = [graphc.shared(rng.normal(size=s).astype("float32") * 0.3) for s in
              [(5, 8), (8,), (8, 4), (4,), (4, 1), (1,)]]
    h = x
    for k in range(3):
        h = T.dot(h, params[2 * k]) + params[2 * k + 1]
        h = T.nnet.relu(h) if k < 2 else T.nnet.sigmoid(h)
    loss = T.nnet.binary_crossentropy(h, y).mean()
    grads = graphc.grad(loss, params)
    updates = [(p, p - 0.1 * g) for p, g in zip(params, grads)]
    fn = graphc.function([x, y], loss, updates=updates, mode=REF)
    nodes = fn.fgraph.toposort()
    hidden = [n for n in nodes if isinstance(n.op, Fused) and "relu" in str(n.op)
              and "switch" not in str(n.op)]
    assert len(hidden) == 2  # each hidden layer's bias add + relu: one kernel, one output
    assert all(len(n.outputs) == 1 for n in hidden)
    assert not any(isinstance(n.op, graphc.ops.elemwise.Elemwise) and n.op.scalar_op.name == "relu"
                   for n in nodes)
    native = graphc.function([x, y], loss, updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])
    vx, vy = rng.normal(size=(6, 5)).astype("float32"), (rng.random((6, 1)) > 0.5).astype("float32")
    start = [p.get_value() for p in params]
    l1 = fn(vx, vy)
    after = [p.get_value() for p in params]
    for p, s in zip(params, start):
        p.set_value(s)
    l2 = native(vx, vy)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for p, a in zip(params, after):
        np.testing.assert_allclose(p.get_value(), a, rtol=1e-5, atol=1e-6)
