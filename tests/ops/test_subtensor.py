"""Indexing against NumPy: x[idx] (basic, integer arrays, masks), set_subtensor, inc_subtensor."""

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.gradient import verify_grad

A, B = np.array([0, 2]), np.array([1, 1])
M4 = np.array([True, False, True, True])
M5 = np.array([False, True, True, False, True])

# Index patterns on a (4, 5, 6) tensor.
PATTERNS = [
    0, -1, 3, (1, 2), (1, 2, 3), (-4, -5, -6), slice(1, 3), slice(None, None, -1), slice(-2, None),
    slice(None, -1, 2), slice(10, 20), slice(3, 1), slice(None, None, -2), slice(-10, 2),
    slice(3, -10, -1), (slice(None), 0), (Ellipsis, 1), (None, 0), (0, None, slice(None), None),
    (Ellipsis, None), (1, Ellipsis, slice(1, 3)), (slice(1, 3), slice(None), slice(4, 0, -2)), (),
    Ellipsis, (slice(None), slice(None), slice(None), None),
    # integer arrays
    [0, 2], np.array([3, 3, 0]), (A, B), (slice(None), [0, 4, 4]), ([0, 1], slice(None), [2, 3]),
    (0, slice(None), [1, 2]), ([[0, 1], [2, 3]],), (slice(1, 3), [[0], [1]], [0, 1, 2]),
    (Ellipsis, [0, -1]), ([0], Ellipsis, [1]), ([0, 1], None, [1, 2]), (np.array([], "int64"),),
    (slice(None), [1, 2], 0), (1, [2, 3], [[4], [5]]), ([-1, -4], slice(None, None, -1)),
    (None, [1], slice(None), [2]), (slice(None), [0, 1], [1, 2]), (slice(None), [], slice(1, 2)),
    # boolean masks
    M4, (slice(None), M5), (M4, 0), (np.ones((4, 5), bool) & (np.arange(5) % 2 == 0),),
    (M4, slice(None), [1, 2, 3]),
]


def _symbolic(idx):
    """The same index with every integer, slice bound and array replaced by an input."""
    items = idx if isinstance(idx, tuple) else (idx,)
    inputs, values, out = [], [], []

    def add(value, dtype):
        v = T.tensor(dtype, shape=(None,) * np.ndim(value), name=f"i{len(inputs)}")
        inputs.append(v)
        values.append(np.asarray(value, dtype=dtype))
        return v

    for item in items:
        if item is None or item is Ellipsis:
            out.append(item)
        elif isinstance(item, slice):
            out.append(slice(*(None if p is None else add(p, "int64")
                               for p in (item.start, item.stop, item.step))))
        elif isinstance(item, int):
            out.append(add(item, "int32"))
        else:
            arr = np.asarray(item)
            out.append(add(arr, "bool" if arr.dtype == bool else "int64"))
    return tuple(out), inputs, values


def _check(out, inputs, values, expected, static):
    got = graphc.function(inputs, out, mode="PY")(*values)
    assert out.dtype == expected.dtype.name and got.dtype == expected.dtype
    assert out.ndim == expected.ndim
    if static:
        assert out.type.shape == expected.shape
    else:
        assert out.type.is_shape_compatible(expected.shape)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("idx", PATTERNS, ids=[str(k) for k in range(len(PATTERNS))])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("known", [True, False])
def test_constant_index(rng, idx, dtype, known):
    data = rng.standard_normal((4, 5, 6)).astype(dtype) if dtype[0] == "f" else \
        rng.integers(-9, 9, (4, 5, 6))
    x = T.tensor(dtype, shape=(4, 5, 6) if known else (None, None, None), name="x")
    _check(x[idx], [x], [data], data[idx], static=known)


@pytest.mark.parametrize("idx", PATTERNS, ids=[str(k) for k in range(len(PATTERNS))])
@pytest.mark.parametrize("known", [True, False])
def test_symbolic_index(rng, idx, known):
    data = rng.standard_normal((4, 5, 6))
    x = T.tensor("float64", shape=(4, 5, 6) if known else (None, None, None), name="x")
    sym, inputs, values = _symbolic(idx)
    _check(x[sym], [x, *inputs], [data, *values], data[idx], static=False)


def test_static_shapes():
    assert T.tensor("float32", shape=(None, 3))[:, 0].type.shape == (None,)
    assert T.tensor("float32", shape=(10,))[1:3].type.shape == (2,)
    x = T.tensor("float32", shape=(None, 3, 4))
    assert x[:, ::-1, 1:].type.shape == (None, 3, 3)
    assert x[2:5].type.shape == (None, 3, 4)
    assert x[..., None, 0].type.shape == (None, 3, 1)
    assert x[:, [0, 1, 1]].type.shape == (None, 3, 4)
    assert x[T.lvector(), :, T.lvector(shape=(5,))].type.shape == (5, 3)
    assert x[:, T.lmatrix(shape=(2, None))].type.shape == (None, 2, None, 4)
    assert x[1].type.shape == (3, 4) and x[1].dtype == "float32"


def test_arange_pairs_pattern(rng):
    p, y, n = T.matrix("p"), T.ivector("y"), T.lscalar("n")
    out = p[T.arange(n), y]
    assert out.dtype == p.dtype and out.type.shape == (None,)
    data = rng.random((5, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1, 0], "int32")
    got = graphc.function([p, n, y], out, mode="PY")(data, 5, labels)
    np.testing.assert_array_equal(got, data[np.arange(5), labels])
    loss = -T.log(p[T.arange(y.shape[0]), y]).mean()
    g = graphc.grad(loss, p)
    expected = np.zeros_like(data)
    np.add.at(expected, (np.arange(5), labels), -1.0 / (5 * data[np.arange(5), labels]))
    np.testing.assert_allclose(graphc.function([p, y], g, mode="PY")(data, labels), expected, rtol=1e-5)


def test_index_with_symbolic_list_and_shape():
    x, i = T.dmatrix("x"), T.lscalar("i")
    out = x[[i, 0, i]]
    data = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(graphc.function([x, i], out, mode="PY")(data, 2), data[[2, 0, 2]])
    out = x[x.shape[0] - 1, : x.shape[1] - 1]
    np.testing.assert_array_equal(graphc.function([x], out, mode="PY")(data), data[3, :2])


def test_build_time_errors():
    x = T.tensor("float32", shape=(3, 4))
    with pytest.raises(IndexError, match="too many"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="out of bounds"):
        x[3]
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, -5]
    with pytest.raises(IndexError, match="out of bounds"):
        x[[0, 3]]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match="broadcast"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(IndexError, match="boolean index"):
        x[np.array([True, False])]
    with pytest.raises(TypeError):
        x[T.scalar()]
    with pytest.raises(TypeError):
        x[1.5]
    with pytest.raises(TypeError):
        x[True]
    with pytest.raises(TypeError):
        x[T.fvector():]
    with pytest.raises(ValueError, match="zero"):
        x[::0]


@pytest.mark.parametrize("build,value,match", [
    (lambda x, i: x[i], 4, "out of bounds"),
    (lambda x, i: x[i], -5, "out of bounds"),
    (lambda x, i: x[:, i], 3, "out of bounds"),
    (lambda x, i: x[T.stack([0, i])], 7, "out of bounds"),
    (lambda x, i: x[::i], 0, "zero"),
    (lambda x, i: T.inc_subtensor(x[[0, i]], 1.0), 9, "out of bounds"),
    (lambda x, i: T.set_subtensor(x[i, 0], 1.0), -9, "out of bounds"),
])
def test_run_time_index_errors(build, value, match):
    x, i = T.dmatrix("x"), T.lscalar("i")
    f = graphc.function([x, i], build(x, i), mode="PY")
    with pytest.raises((IndexError, ValueError), match=match) as info:
        f(np.zeros((4, 3)), value)
    assert "test_subtensor.py" in str(info.value)  # the error names the user line


def test_run_time_array_errors():
    x, a, b, m = T.dmatrix("x"), T.lvector("a"), T.lvector("b"), T.bvector("m")
    data = np.zeros((4, 3))
    f = graphc.function([x, a, b], x[a, b], mode="PY")
    with pytest.raises((IndexError, ValueError), match="broadcast"):
        f(data, [0, 1], [0, 1, 2])
    mask = T.tensor("bool", shape=(None,))
    g = graphc.function([x, mask], x[mask], mode="PY")
    with pytest.raises((IndexError, ValueError), match="boolean"):
        g(data, np.array([True, False]))
    with pytest.raises(TypeError):
        x[m.astype("float32")]


# ---------------------------------------------------------------------------------------
UPDATES = [
    (1, (5, 6)), ((slice(1, 3), 2), (2, 6)), ((slice(1, 3), 2), (6,)), ((Ellipsis, 0), ()),
    ([0, 2, 0], (3, 5, 6)), ((A, B), (2, 6)), (([0, 0, 3], slice(None), [1, 1, 1]), (3, 5)),
    ((slice(None), [1, 1, 4]), (1, 3, 1)), ((None, 0), (1, 5, 6)), ((M4, 1), (3, 6)),
    ((slice(None, None, -1), slice(4, 0, -2)), (2, 6)), ((slice(None), [], 1), (4, 0)),
]


@pytest.mark.parametrize("idx,yshape", UPDATES, ids=[str(k) for k in range(len(UPDATES))])
@pytest.mark.parametrize("symbolic", [False, True])
def test_set_and_inc_subtensor(rng, idx, yshape, symbolic):
    data = rng.standard_normal((4, 5, 6))
    ydata = rng.standard_normal(yshape)
    x = T.dtensor3("x")
    y = T.tensor("float64", shape=yshape, name="y")
    sym, inputs, values = _symbolic(idx) if symbolic else (idx, [], [])
    set_out = T.set_subtensor(x[sym], y)
    inc_out = T.inc_subtensor(x[sym], y)
    assert set_out.type == x.type and inc_out.type == x.type
    got_set, got_inc = graphc.function([x, y, *inputs], [set_out, inc_out], mode="PY")(
        data, ydata, *values)
    expected = data.copy()
    expected[idx] = ydata
    np.testing.assert_array_equal(got_set, expected)
    expected = data.copy()
    np.add.at(expected, idx, ydata)
    np.testing.assert_allclose(got_inc, expected, rtol=1e-12)


def test_inc_subtensor_accumulates_repeated_indices():
    x, i = T.dvector("x"), T.lvector("i")
    out = T.inc_subtensor(x[i], 1.0)
    got = graphc.function([x, i], out, mode="PY")(np.zeros(4), [0, 2, 0, 0, -1])
    np.testing.assert_array_equal(got, [3.0, 0.0, 1.0, 1.0])


def test_update_dtypes_and_input_is_not_modified():
    x = T.imatrix("x")
    data = np.arange(6, dtype="int32").reshape(2, 3)
    out = T.inc_subtensor(x[:, 1], 5)
    assert out.dtype == "int32"
    got = graphc.function([x], out, mode="PY")(data)
    np.testing.assert_array_equal(got, data + np.array([0, 5, 0]))
    assert data[0, 1] == 1  # the input array was copied, not modified
    with pytest.raises(TypeError, match="cannot store"):
        T.set_subtensor(x[0], T.fvector())
    with pytest.raises(TypeError, match="cannot store"):
        T.set_subtensor(x[0], 0.5)
    f = T.fmatrix("f")
    out = T.set_subtensor(f[0], T.dvector())
    assert out.dtype == "float32"
    out = T.set_subtensor(f[0], 2)
    assert out.dtype == "float32"


def test_update_errors():
    x = T.tensor("float32", shape=(3, 4))
    with pytest.raises(TypeError, match="indexing expression"):
        T.set_subtensor(x, 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        T.set_subtensor(x[0], T.matrix())
    with pytest.raises(ValueError, match="broadcast"):
        T.inc_subtensor(x[:, 1:3], T.tensor("float32", shape=(3,)))
    m, v = T.fmatrix("m"), T.fvector("v")
    f = graphc.function([m, v], T.set_subtensor(m[:, 0], v), mode="PY")
    with pytest.raises(ValueError):
        f(np.zeros((3, 2), "float32"), np.zeros(4, "float32"))


def test_nested_subtensor_updates_the_inner_base():
    # Theano semantics: set_subtensor(x[i][j], y) updates (and returns) x[i].
    x = T.dmatrix("x")
    out = T.set_subtensor(x[1][0:2], 7.0)
    assert out.ndim == 1
    np.testing.assert_array_equal(graphc.function([x], out, mode="PY")(np.zeros((2, 3))), [7, 7, 0])


# ---------------------------------------------------------------------------------------
_R = np.random.default_rng(3)
_X = _R.standard_normal((3, 4))

GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "subtensor": (lambda x: x[T.arange(3), [0, 3, 3]] * x[0, 1] + x[::-1, 2] + x[: x.shape[0] - 1, None, -1]
                  .sum() + x[np.array([True, False, True])][:, 1:].sum(), [_X]),
    "set_subtensor": (lambda x, y: T.set_subtensor(x[1:, [0, 2]], y) * T.set_subtensor(x[0, 1:], y[0]),
                      [_X, _R.standard_normal(2)]),
    "inc_subtensor": (lambda x, y: T.inc_subtensor(x[[0, 0, 2], 1:3], y) ** 2
                      + T.inc_subtensor(x[..., 2], y[:, 0]).sum(), [_X, _R.standard_normal((3, 2))]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients(name):
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs)


def test_second_order_gradient():
    verify_grad(lambda x: graphc.grad((x[[0, 0, 2]] ** 3).sum() + (x[1:] ** 2).sum(), x), [_X[0]])


def test_gradient_static_shape():
    x = T.tensor("float64", shape=(5, 3))
    g = graphc.grad(x[1:3, 0].sum(), x)
    assert g.type.shape == (5, 3)
    expected = np.zeros((5, 3))
    expected[1:3, 0] = 1
    np.testing.assert_array_equal(graphc.function([x], g, mode="PY")(np.ones((5, 3))), expected)
