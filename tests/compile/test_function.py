"""graphc.function semantics: inputs, defaults, names, updates, givens, aliasing, errors."""

import re

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.compile.function import MissingInputError, UnusedInputError


def test_single_output_returns_array_list_returns_list() -> None:
    x = T.vector("x")
    f = graphc.function([x], x * 2.0, mode="PY")
    g = graphc.function([x], [x * 2.0, x + 1.0], mode="PY")
    v = np.arange(3, dtype="float32")
    out = f(v)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, v * 2)
    a, b = g(v)
    np.testing.assert_allclose(b, v + 1)


def test_inputs_by_position_and_name_and_defaults() -> None:
    x, y = T.scalar("x"), T.scalar("y")
    f = graphc.function([x, graphc.In(y, value=10.0)], x - y, mode="PY")
    assert f(1.0) == pytest.approx(-9.0)
    assert f(1.0, 2.0) == pytest.approx(-1.0)
    assert f(y=3.0, x=5.0) == pytest.approx(2.0)
    assert f(5.0, y=1.0) == pytest.approx(4.0)


def test_argument_errors_name_the_input() -> None:
    x, y = T.vector("x"), T.vector("y")
    f = graphc.function([x, y], x + y, mode="PY")
    v = np.ones(3, "float32")
    with pytest.raises(TypeError, match="takes 2 inputs, got 3"):
        f(v, v, v)
    with pytest.raises(TypeError, match="no input named 'z'"):
        f(v, z=v)
    with pytest.raises(TypeError, match="missing input 'y'"):
        f(v)
    with pytest.raises(TypeError, match="'y'.*1-d.*2-d"):
        f(v, np.ones((2, 2), "float32"))
    with pytest.raises(TypeError, match="'x'.*float64.*allow_input_downcast"):
        f(np.ones(3), v)
    with pytest.raises(TypeError, match="given twice"):
        f(v, x=v)


def test_allow_input_downcast() -> None:
    x = T.vector("x")
    f = graphc.function([x], x * 2.0, mode="PY", allow_input_downcast=True)
    assert f(np.ones(3)).dtype == np.float32
    # Python lists of floats are accepted by default (Theano's rule for Python values).
    g = graphc.function([x], x * 2.0, mode="PY")
    np.testing.assert_allclose(g([1.0, 2.0]), [2.0, 4.0])


def test_runtime_shape_mismatch_names_op_shapes_and_user_line() -> None:
    x, y = T.vector("x"), T.vector("y")
    z = x + y  # the line the error must name
    line = z.owner.trace
    f = graphc.function([x, y], z, mode="PY")
    with pytest.raises(ValueError) as info:
        f(np.ones(3, "float32"), np.ones(4, "float32"))
    message = str(info.value)
    assert "add" in message and "[3]" in message and "[4]" in message
    assert line in message and re.search(r"test_function\.py:\d+", message)


def test_updates_are_simultaneous() -> None:
    a = graphc.shared(np.float32(1.0), name="a")
    b = graphc.shared(np.float32(2.0), name="b")
    swap = graphc.function([], [], updates=[(a, b), (b, a)], mode="PY")
    swap()
    assert a.get_value() == 2.0 and b.get_value() == 1.0
    acc = graphc.shared(np.zeros(2, "float32"), name="acc")
    x = T.vector("x")
    step = graphc.function([x], acc * 1.0, updates={acc: acc + x}, mode="PY")
    old = step(np.ones(2, "float32"))  # outputs see the values before the update
    np.testing.assert_allclose(old, [0, 0])
    np.testing.assert_allclose(acc.get_value(), [1, 1])


def test_update_errors() -> None:
    w = graphc.shared(np.zeros(3, "float32"), name="w")
    x = T.vector("x")
    with pytest.raises(TypeError, match="not a shared variable"):
        graphc.function([x], x, updates=[(x, x + 1.0)], mode="PY")
    with pytest.raises(TypeError, match="dtype float64"):
        graphc.function([], [], updates=[(w, T.dvector("d"))], mode="PY")
    with pytest.raises(ValueError, match="updated twice"):
        graphc.function([], [], updates=[(w, w + 1.0), (w, w * 2.0)], mode="PY")


def test_givens_substitute_variables() -> None:
    x, y = T.scalar("x"), T.scalar("y")
    w = graphc.shared(np.float32(3.0), name="w")
    f = graphc.function([y], x * w, givens={x: y + 1.0}, mode="PY")
    assert f(1.0) == pytest.approx(6.0)
    # Givens can replace a shared variable too.
    g = graphc.function([y], x * w, givens=[(x, y), (w, y)], mode="PY")
    assert g(4.0) == pytest.approx(16.0)


def test_unused_and_missing_inputs() -> None:
    x, y = T.vector("x"), T.vector("y")
    with pytest.raises(UnusedInputError, match="'y'|y"):
        graphc.function([x, y], x * 2.0, mode="PY")
    with pytest.warns(UserWarning):
        graphc.function([x, y], x * 2.0, mode="PY", on_unused_input="warn")
    f = graphc.function([x, y], x * 2.0, mode="PY", on_unused_input="ignore")
    assert f(np.ones(2, "float32"), np.ones(2, "float32")).shape == (2,)
    with pytest.raises(MissingInputError, match="y"):
        graphc.function([x], x + y, mode="PY")


def test_shared_value_semantics_and_aliasing() -> None:
    value = np.arange(3, dtype="float32")
    w = graphc.shared(value, name="w")
    value[0] = 100  # a copy was taken
    assert w.get_value()[0] == 0
    got = w.get_value()
    got[1] = 100
    assert w.get_value()[1] == 1
    f = graphc.function([], w, mode="PY")
    out = f()
    out[2] = 100
    assert w.get_value()[2] == 2  # the returned array does not alias the shared storage
    borrowed = graphc.shared(value, borrow=True)
    assert borrowed.get_value(borrow=True) is value
    w.set_value(np.ones(5, "float32"))
    assert f().shape == (5,)
    with pytest.raises(ValueError, match="does not fit"):
        w.set_value(np.ones((2, 2), "float32"))
    with pytest.raises(TypeError, match="explicit input"):
        graphc.function([w], w * 2.0, mode="PY")


def test_output_does_not_alias_input() -> None:
    x = T.vector("x")
    f = graphc.function([x], x, mode="PY")
    v = np.ones(3, "float32")
    out = f(v)
    out[0] = 5
    assert v[0] == 1


def test_default_updates_are_applied() -> None:
    counter = graphc.shared(np.int64(0), name="counter")
    counter.default_update = counter + 1
    f = graphc.function([], counter * 1, mode="PY")
    assert [int(f()) for _ in range(3)] == [0, 1, 2]
    g = graphc.function([], counter * 1, mode="PY", no_default_updates=True)
    g()
    assert counter.get_value() == 3


def test_mode_names_and_errors() -> None:
    x = T.vector("x")
    for mode in ("PY", "FAST_RUN", "FAST_COMPILE", None):
        f = graphc.function([x], T.exp(x), mode=mode)
        np.testing.assert_allclose(f(np.zeros(2, "float32")), [1, 1])
    with pytest.raises(ValueError, match="unknown mode"):
        graphc.function([x], x, mode="TURBO")


def test_fgraph_is_exposed_and_is_a_copy() -> None:
    x = T.vector("x")
    y = T.exp(x)
    f = graphc.function([x], y, mode="PY")
    assert f.fgraph.inputs == [x]
    assert f.maker.fgraph is f.fgraph
    assert all(node is not y.owner for node in f.fgraph.toposort())


def test_eval_convenience() -> None:
    x = T.vector("x")
    np.testing.assert_allclose((x * 2.0).eval({x: np.ones(2, "float32")}), [2, 2])


def test_out_borrow_may_return_shared_storage() -> None:
    w = graphc.shared(np.arange(3, dtype="float32"), name="w")
    f = graphc.function([], graphc.Out(w, borrow=True), mode="PY")
    assert f() is w.get_value(borrow=True)
    g = graphc.function([], w, mode="PY")
    assert g() is not w.get_value(borrow=True)


@pytest.mark.parametrize("mode", ["PY", "FAST_RUN"])
def test_byte_swapped_inputs_become_native_arrays(mode: str) -> None:
    # '>f8' has the name float64 but not its layout: outputs must have the declared dtype.
    d, idx = T.dmatrix("d"), T.lvector("idx")
    fn = graphc.function([d, idx], [d[idx], d[:, 0], d * 2.0], mode=mode)
    value = np.arange(6.0).reshape(3, 2).astype(">f8")
    outs = fn(value, np.array([2, 0], dtype=">i8"))
    for got, want in zip(outs, [value[[2, 0]], value[:, 0], value * 2.0]):
        assert got.dtype == np.dtype("float64") and got.dtype.isnative
        np.testing.assert_array_equal(got, want)
    s = graphc.shared(np.ones(3, dtype=">f8"))
    assert s.get_value().dtype.isnative
    s.set_value(np.zeros(3, dtype=">f8"))
    assert s.get_value().dtype.isnative
