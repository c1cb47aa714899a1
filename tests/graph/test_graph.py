"""The IR: types, variables, Apply nodes, traces, FunctionGraph editing."""

import networkx as nx
import numpy as np
import pytest

import graphc.tensor as T
from graphc.graph.basic import Apply, Constant, Variable, clone_graph, graph_inputs, io_toposort
from graphc.graph.fgraph import FunctionGraph, InconsistencyError
from graphc.graph.type import TensorType


def test_tensor_type_broadcastable_and_equality() -> None:
    t = TensorType("float32", (1, None, 3))
    assert t.broadcastable == (True, False, False)
    assert t.ndim == 3
    assert t == TensorType(np.float32, (1, None, 3))
    assert t != TensorType("float64", (1, None, 3))
    assert hash(t) == hash(TensorType("float32", (1, None, 3)))


def test_tensor_type_rejects_bad_shapes_and_dtypes() -> None:
    with pytest.raises(ValueError):
        TensorType("float32", (-1,))
    with pytest.raises(TypeError):
        TensorType("complex64", ())


def test_filter_checks_ndim_shape_and_downcast() -> None:
    t = TensorType("float32", (None, 3))
    assert t.filter(np.ones((2, 3), "float32"), "x").dtype == np.float32
    with pytest.raises(TypeError, match="'x'.*2-d"):
        t.filter(np.ones(3, "float32"), "x")
    with pytest.raises(ValueError, match="'x'.*shape"):
        t.filter(np.ones((2, 4), "float32"), "x")
    with pytest.raises(TypeError, match="'x'.*float64.*lose precision"):
        t.filter(np.ones((2, 3), "float64"), "x", allow_downcast=False)
    assert t.filter(np.ones((2, 3), "float64"), "x", allow_downcast=True).dtype == np.float32
    # Python floats are float64 by accident: accepted for a float32 input by default.
    assert t.filter([[0.1, 0.2, 0.3]], "x").dtype == np.float32


def test_apply_records_user_line() -> None:
    x = T.vector("x")
    y = T.exp(x)  # this line is the trace
    assert y.owner.trace.endswith(f"test_graph.py:{y.owner.trace.rsplit(':', 1)[1]}")
    assert "test_graph.py" in y.owner.trace


def test_toposort_and_graph_inputs() -> None:
    x, y = T.vector("x"), T.vector("y")
    a = x + y
    b = T.exp(a) * a
    order = io_toposort([b])
    assert order.index(a.owner) < order.index(b.owner.inputs[0].owner) < order.index(b.owner)
    assert set(graph_inputs([b])) == {x, y}


def test_deep_graph_does_not_recurse() -> None:
    x = T.scalar("x")
    y = x
    for _ in range(5000):
        y = y + 1.0
    assert len(io_toposort([y])) == 5000


def test_clone_graph_substitutes_and_reinfers_types() -> None:
    x = T.matrix("x")
    y = T.exp(x) + 1.0
    z = T.tensor("float32", shape=(2, 3), name="z")
    (new,), memo = clone_graph([y], {x: z})
    assert new.type.shape == (2, 3)
    assert x in memo and memo[x] is z
    assert y.type.shape == (None, None)  # the original graph is untouched


def test_constant_is_read_only_and_merges_by_signature() -> None:
    c1, c2 = T.constant(np.arange(3.0)), T.constant(np.arange(3.0))
    assert isinstance(c1, Constant)
    assert c1.signature() == c2.signature()
    with pytest.raises(ValueError):
        c1.data[0] = 5


def test_function_graph_structure_and_replace() -> None:
    x = T.vector("x")
    y = T.exp(x) * 2.0
    fg = FunctionGraph([x], [y], clone=True)
    assert isinstance(fg.nx, nx.DiGraph)
    assert nx.is_directed_acyclic_graph(fg.nx)
    ops = [str(n.op) for n in fg.toposort()]
    assert ops[0].startswith("Elemwise{exp}")
    (fx,) = fg.inputs
    exp_out = fg.toposort()[0].outputs[0]
    assert [c for c, _ in fg.clients[exp_out]] == [fg.toposort()[1]]
    # Replace exp(x) by log(x): exp's node must disappear, the mul must read log.
    new = T.log(fx)
    fg.replace(exp_out, new, reason="test")
    names = [str(n.op) for n in fg.toposort()]
    assert "Elemwise{exp}" not in names and "Elemwise{log}" in names
    fg.check_acyclic()


def test_function_graph_refuses_type_change_and_cycles() -> None:
    x = T.vector("x")
    y = T.exp(x)
    fg = FunctionGraph([x], [y * 2.0], clone=True)
    out = fg.outputs[0]
    with pytest.raises(InconsistencyError, match="type"):
        fg.replace(out, T.exp(T.matrix()), reason="bad")
    exp_out = out.owner.inputs[0]
    with pytest.raises(InconsistencyError):
        fg.replace(exp_out, out + 1.0, reason="cyclic")


def test_function_graph_clone_is_independent() -> None:
    x = T.vector("x")
    fg = FunctionGraph([x], [T.exp(x)], clone=True)
    fg2 = fg.clone()
    assert fg2.apply_nodes.isdisjoint(fg.apply_nodes)
    assert fg2.inputs == fg.inputs


def test_missing_input_is_reported() -> None:
    x, y = T.vector("x"), T.vector("y")
    with pytest.raises(ValueError, match="not among the function's inputs"):
        FunctionGraph([x], [x + y])


def test_apply_requires_variables() -> None:
    with pytest.raises(TypeError, match="must be a graphc Variable"):
        Apply(T.exp(T.vector()).owner.op, [np.ones(3)], [TensorType("float32", (None,))])


def test_symbolic_variables_have_no_truth_value() -> None:
    x = T.scalar()
    with pytest.raises(TypeError, match="ifelse"):
        bool(x > 0)
    assert isinstance(x, Variable)
