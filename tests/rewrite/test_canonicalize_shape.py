"""Shape canonicalizations and the shape analysis behind them."""

import numpy as np

import graphc
import graphc.tensor as T
from graphc.graph.fgraph import FunctionGraph
from graphc.ops.elemwise import sum_to_shape
from graphc.rewrite.shapes import ShapeInfo
from tests.rewrite.helpers import op_names, rewrite_and_compare

NOFUSE = graphc.Mode(backend="py", excluding=["fusion"])


def test_shape_info_proves_only_what_holds() -> None:
    x, w, v = T.matrix("x"), T.matrix("w"), T.matrix("v")
    h = T.tanh(T.dot(x, w))
    y = h * v  # v may broadcast: nothing proves y has h's shape
    z = T.dot(h, T.dot(w.T, x.T))
    fg = FunctionGraph([x, w, v], [y, z], clone=False)
    info = ShapeInfo(fg)
    assert info.same_shape(h, T.dot(x, w))
    assert not info.same_shape(y, h)
    assert info.same_dim(x, 1, w, 0)  # dot checks its inner axes
    assert info.same_shape(z, T.dot(x, x.T))


def test_useless_sum_to_shape_goes(rng) -> None:
    x, w = T.matrix("x"), T.matrix("w")
    g = sum_to_shape(T.exp(T.dot(x, w)) * 2, T.dot(x, w))
    f = rewrite_and_compare([x, w], g, [rng.normal(size=(2, 3)).astype("float32"),
                                        rng.normal(size=(3, 4)).astype("float32")], mode=NOFUSE)
    assert "SumToShape" not in op_names(f)


def test_sum_to_shape_of_a_bias_is_kept_when_unprovable(rng) -> None:
    x, b = T.matrix("x"), T.vector("b")
    gb = graphc.grad((x + b).sum(), b)
    f = rewrite_and_compare([x, b], gb, [np.ones((3, 4), "float32"), np.ones(4, "float32")])
    assert f(np.ones((3, 4), "float32"), np.ones(4, "float32")).tolist() == [3.0] * 4
    # b of length 1 really broadcasts: the reduction must still happen.
    assert f(np.ones((3, 4), "float32"), np.ones(1, "float32")).tolist() == [12.0]


def test_sum_to_shape_over_static_broadcast_axes_becomes_a_sum(rng) -> None:
    x = T.matrix("x")
    row = T.tensor("float32", (1, None), "row")
    g = sum_to_shape(T.exp(x) * 2, row)
    fg = FunctionGraph([x, row], [T.exp(T.dot(x, row.T))], clone=False)
    assert fg is not None
    f = rewrite_and_compare([x, row], g, [rng.normal(size=(3, 4)).astype("float32"),
                                          rng.normal(size=(1, 4)).astype("float32")], mode=NOFUSE)
    assert "SumToShape" in op_names(f) or "Reduce" in op_names(f)


def test_fill_of_same_shape_goes(rng) -> None:
    x = T.matrix("x")
    f = rewrite_and_compare([x], T.second(T.exp(x), T.tanh(x)), [rng.normal(size=(2, 3)).astype("float32")],
                            mode=NOFUSE)
    assert op_names(f) == ["tanh"]
    s = T.scalar("s")
    f = rewrite_and_compare([x, s], T.second(x, s), [np.ones((2, 3), "float32"), np.float32(2)],
                            mode=NOFUSE)
    assert op_names(f) == ["DimShuffle", "second"]


def test_shape_of_known_shape_is_constant() -> None:
    x = T.tensor("float32", (2, 3), "x")
    f = graphc.function([x], x * T.cast(x.shape[1], "float32"), mode=NOFUSE)
    assert "Shape" not in op_names(f) and "Subtensor" not in op_names(f)
    np.testing.assert_array_equal(f(np.ones((2, 3), "float32")), 3 * np.ones((2, 3)))
    y = T.matrix("y")
    f = graphc.function([y], y.shape, mode=NOFUSE)
    assert op_names(f) == ["Shape"]


def test_shape_only_consumers_read_the_earliest_same_shape_variable(rng) -> None:
    x = T.matrix("x")
    e = T.exp(T.tanh(x))
    f = rewrite_and_compare([x], [e.shape, T.zeros_like(e)], [rng.normal(size=(2, 3)).astype("float32")],
                            mode=NOFUSE)
    for node in f.fgraph.toposort():
        assert node.inputs[0].name == "x" or node.op.__class__.__name__ != "Shape"
    assert "exp" not in op_names(f)


def test_reshape_rewrites(rng) -> None:
    x = T.matrix("x")
    vx = rng.normal(size=(2, 6)).astype("float32")
    f = rewrite_and_compare([x], x.reshape((3, 4)).reshape((4, 3)), [vx], mode=NOFUSE)
    assert op_names(f).count("Reshape") == 1
    f = rewrite_and_compare([x], x.reshape((x.shape[0], x.shape[1])), [vx], mode=NOFUSE)
    assert op_names(f) == []
    f = rewrite_and_compare([x], x.flatten(2), [vx], mode=NOFUSE)
    assert op_names(f) == []


def test_full_slice_subtensor_goes(rng) -> None:
    x = T.matrix("x")
    f = rewrite_and_compare([x], T.exp(x[:, :]), [rng.normal(size=(2, 3)).astype("float32")], mode=NOFUSE)
    assert op_names(f) == ["exp"]


def test_sum_of_label_scatter() -> None:
    from graphc.ops.nnet import LabelScatter

    g, y, like = T.vector("g"), T.ivector("y"), T.matrix("like")
    out = LabelScatter()(g, y, like).sum(axis=1)
    f = rewrite_and_compare([g, y, like], out, [np.array([1.0, 2.0], "float32"), np.array([0, 2], "int32"),
                                                np.zeros((2, 3), "float32")], mode=NOFUSE)
    assert op_names(f) == []
