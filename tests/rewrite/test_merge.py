"""Merge (CSE): equal constants and equal nodes become one."""

import numpy as np

import graphc
import graphc.tensor as T
from tests.rewrite.helpers import REF, op_names, rewrite_and_compare


def test_equal_subexpressions_merge() -> None:
    x, y = T.matrix("x"), T.matrix("y")
    out = T.exp(x + y) * T.exp(x + y)
    f = rewrite_and_compare([x, y], out, [np.ones((2, 2), "float32"), np.eye(2, dtype="float32")],
                            mode=graphc.Mode(backend="py", excluding=["fusion"]))
    assert op_names(f).count("exp") == 1
    assert op_names(f).count("add") == 1


def test_commuted_operands_merge_after_canonical_ordering() -> None:
    x, y = T.matrix("x"), T.matrix("y")
    out = T.tanh(x + y) + T.tanh(y + x)
    f = rewrite_and_compare([x, y], out, [np.ones((2, 2), "float32"), np.eye(2, dtype="float32")],
                            mode=graphc.Mode(backend="py", excluding=["fusion"]))
    assert op_names(f).count("tanh") == 1


def test_equal_constants_merge() -> None:
    x = T.vector("x")
    out = [x * T.constant(np.float32(2.5)), T.sin(x) * T.constant(np.float32(2.5))]
    f = graphc.function([x], out, mode=graphc.Mode(backend="py", excluding=["fusion"]))
    consts = {id(i) for n in f.fgraph.toposort() for i in n.inputs if hasattr(i, "data")}
    assert len(consts) == 1


def test_outputs_of_merged_nodes_keep_working() -> None:
    x = T.vector("x")
    f = graphc.function([x], [T.exp(x), T.exp(x)], mode=REF)
    a, b = f(np.array([0.0, 1.0], "float32"))
    np.testing.assert_allclose(a, np.exp([0.0, 1.0]), rtol=1e-6)
    np.testing.assert_allclose(b, a)


def test_random_draws_from_one_state_merge_but_streams_advance() -> None:
    srng = T.random.RandomStream(42)
    u1 = srng.uniform((3,))
    u2 = srng.uniform((3,))
    f = graphc.function([], [u1, u2, u1 * 1], mode=REF)
    a, b, c = f()
    assert not np.allclose(a, b)  # two streams, two draws
    np.testing.assert_array_equal(a, c)
    a2, _, _ = f()
    assert not np.allclose(a, a2)  # each call advances the streams
