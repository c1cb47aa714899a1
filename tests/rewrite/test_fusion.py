"""Elementwise fusion: regions become one Fused node computing the same values."""

import numpy as np

import graphc
import graphc.tensor as T
from graphc.rewrite import Fused
from tests.rewrite.helpers import REF, REF_NONE, op_names, rewrite_and_compare


def _vals(rng, *shapes, dtype="float32"):
    return [rng.normal(size=s).astype(dtype) for s in shapes]


def test_issue_example_is_one_fused_node(rng) -> None:
    x, y, z = T.matrix("x"), T.matrix("y"), T.matrix("z")
    f = rewrite_and_compare([x, y, z], T.exp(x) * y + T.tanh(z), _vals(rng, (3, 4), (3, 4), (3, 4)))
    assert op_names(f) == ["Fused"]
    node = f.fgraph.toposort()[0]
    assert isinstance(node.op, Fused)
    assert sorted(s.name for s, _, _ in node.op.steps) == ["add", "exp", "mul", "tanh"]
    assert f.fgraph.outputs[0].type == (T.exp(x) * y + T.tanh(z)).type


def test_fused_output_is_bitwise_equal_to_unfused(rng) -> None:
    x, y = T.vector("x"), T.vector("y")
    out = T.sqrt(T.abs(T.sin(x) * y - 3)) / (1 + T.exp(-x))
    fast = graphc.function([x, y], out, mode=REF)
    slow = graphc.function([x, y], out, mode=REF_NONE)
    vx, vy = _vals(rng, (50,), (50,))
    assert op_names(fast) == ["Fused"]
    np.testing.assert_array_equal(fast(vx, vy), slow(vx, vy))


def test_value_used_outside_the_region_is_not_duplicated(rng) -> None:
    x, y = T.matrix("x"), T.matrix("y")
    e = T.exp(x)
    out = T.dot(e, y) + T.sin(e)
    f = rewrite_and_compare([x, y], out, _vals(rng, (3, 3), (3, 3)),
                            mode=graphc.Mode(backend="py", excluding=["specialize"]))
    names = op_names(f)
    assert names.count("exp") == 1  # e feeds dot and the sin region: computed once
    assert "Fused" in names


def test_graph_output_inside_a_region_becomes_an_extra_output(rng) -> None:
    x, y = T.matrix("x"), T.matrix("y")
    e = T.exp(x) * 2
    f = rewrite_and_compare([x, y], [e, T.tanh(e) + y], _vals(rng, (2, 5), (2, 5)))
    assert op_names(f) == ["Fused"]
    assert len(f.fgraph.toposort()[0].outputs) == 2


def test_broadcast_row_is_not_recomputed_per_row(rng) -> None:
    x = T.matrix("x")
    b = T.tensor("float32", (1, None), "b")
    f = rewrite_and_compare([x, b], x * T.exp(T.sin(b)), _vals(rng, (4, 3), (1, 3)))
    nodes = f.fgraph.toposort()
    assert len(nodes) == 2
    assert nodes[0].outputs[0].type.shape == (1, None)


def test_dtypes_of_steps_are_kept(rng) -> None:
    i = T.ivector("i")
    x = T.fvector("x")
    out = T.cast(i * 3 + 1, "float32") * x
    f = rewrite_and_compare([i, x], out, [np.array([1, 2, 3], "int32"), _vals(rng, (3,))[0]])
    assert op_names(f) == ["Fused"]
    assert f(np.array([1, 2, 3], "int32"), np.ones(3, "float32")).dtype == np.float32


def test_sum_of_elementwise_is_one_node(rng) -> None:
    x, y = T.matrix("x"), T.matrix("y")
    f = rewrite_and_compare([x, y], T.sum(T.exp(x) * y), _vals(rng, (3, 4), (3, 4)))
    assert op_names(f) == ["Fused"]
    node = f.fgraph.toposort()[0]
    assert node.op.reduce is not None and node.op.reduce.kind == "add"
    f = rewrite_and_compare([x, y], T.sum(T.exp(x) * y, axis=1), _vals(rng, (3, 4), (3, 4)))
    assert op_names(f) == ["Fused"]
    f = rewrite_and_compare([x], T.exp(x).max(axis=0), _vals(rng, (3, 4)))
    assert op_names(f) == ["Fused"]


def test_reduction_is_not_absorbed_when_the_region_value_is_reused(rng) -> None:
    x = T.matrix("x")
    e = T.exp(x) * 2
    f = rewrite_and_compare([x], [e.sum(), e], _vals(rng, (3, 4)))
    assert op_names(f) == ["Fused", "Reduce"]


def test_excluding_fusion(rng) -> None:
    x, y, z = T.matrix("x"), T.matrix("y"), T.matrix("z")
    mode = graphc.Mode(backend="py", excluding=["fusion"])
    f = graphc.function([x, y, z], T.exp(x) * y + T.tanh(z), mode=mode)
    assert "Fused" not in op_names(f)


def test_fused_op_props_merge_and_print() -> None:
    x = T.vector("x")
    f = graphc.function([x], [T.exp(x) * 2, T.exp(x + 1) * 2], mode=REF)
    ops = [n.op for n in f.fgraph.toposort() if isinstance(n.op, Fused)]
    assert str(ops[0]).startswith("Fused{")
    assert hash(ops[0]) == hash(Fused(ops[0].n_inputs, ops[0].steps, ops[0].outputs))


def test_fused_op_gradient(rng) -> None:
    x, y = T.dvector("x"), T.dvector("y")
    f = graphc.function([x, y], T.exp(x) * y + T.tanh(x), mode=REF)
    op = f.fgraph.toposort()[0].op
    assert isinstance(op, Fused)
    graphc.gradient.verify_grad(lambda a, b: op(a, b), [rng.normal(size=4), rng.normal(size=4)])
    g = graphc.function([x, y], T.sum(T.exp(x) * y), mode=REF).fgraph.toposort()[0].op
    assert g.reduce is not None
    graphc.gradient.verify_grad(lambda a, b: g(a, b), [rng.normal(size=4), rng.normal(size=4)])


def test_mlp_training_step_shrinks(rng) -> None:
    x, y = T.matrix("x"), T.ivector("y")
    w1 = graphc.shared(rng.normal(size=(5, 8)).astype("float32") * 0.1, name="W1")
    b1 = graphc.shared(np.zeros(8, "float32"), name="b1")
    w2 = graphc.shared(rng.normal(size=(8, 3)).astype("float32") * 0.1, name="W2")
    b2 = graphc.shared(np.zeros(3, "float32"), name="b2")
    h = T.nnet.relu(T.dot(x, w1) + b1)
    p = T.nnet.softmax(T.dot(h, w2) + b2)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    params = [w1, b1, w2, b2]
    grads = graphc.grad(loss, params)
    updates = [(v, v - 0.1 * g) for v, g in zip(params, grads)]
    fast = graphc.function([x, y], loss, updates=updates, mode=REF)
    slow = graphc.function([x, y], loss, updates=updates, mode=REF_NONE)
    assert len(fast.fgraph.toposort()) <= 0.7 * len(slow.fgraph.toposort())
    vx, vy = rng.normal(size=(6, 5)).astype("float32"), np.array([0, 1, 2, 0, 1, 2], "int32")
    start = [v.get_value() for v in params]
    l1 = fast(vx, vy)
    after_fast = [v.get_value() for v in params]
    for v, s in zip(params, start):
        v.set_value(s)
    l2 = slow(vx, vy)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for v, a in zip(params, after_fast):
        np.testing.assert_allclose(v.get_value(), a, rtol=1e-4, atol=1e-6)
