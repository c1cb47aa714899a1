"""Native advanced indexing (graphc.backend.llvm.index_adv_kernels): boolean masks and integer
arrays on any axes, read / set / inc, against mode='PY' and NumPy; bad indices raise the
reference's error without touching memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.compile.mode import Mode
from graphc.ops.subtensor import IncSubtensor, Subtensor

NATIVE = Mode("llvm", "fast_run")
NX = np.newaxis


def _values(rng: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    if dtype[0] == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    return rng.integers(-9, 9, shape).astype(dtype)


def _sym(a: np.ndarray, name: str) -> T.TensorVariable:
    return T.tensor(a.dtype.name, shape=(None,) * a.ndim, name=name)


def _compare(build: Callable, args: list[np.ndarray], expect: np.ndarray | None = None,
             op: type = Subtensor) -> None:
    """``build(*symbols)`` compiled natively and in PY agree on ``args`` (and with ``expect``),
    and the indexing node runs a kernel."""
    syms = [_sym(a, f"a{k}") for k, a in enumerate(args)]
    out = build(*syms)
    fn = graphc.function(syms, out, mode=NATIVE, on_unused_input="ignore")
    ref = graphc.function(syms, out, mode="PY", on_unused_input="ignore")
    assert any(isinstance(n.op, op) for n, _ in fn.native_kernels()), fn.native_kernels()
    got, want = fn(*args), ref(*args)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if expect is not None:
        assert got.shape == expect.shape
        np.testing.assert_array_equal(got, expect)


# (name, index given the index arrays, index arrays from (rng, x shape)) on a (5, 6, 7) x
def _ints(rng: np.random.Generator, n: int, shape: tuple, dtype: str = "int64") -> np.ndarray:
    lo = -n if dtype[0] == "i" else 0
    return rng.integers(lo, n, shape).astype(dtype)


PATTERNS = {
    "i,j": (lambda i, j: (i, j), lambda r: [_ints(r, 5, (4,)), _ints(r, 6, (4,), "int32")]),
    ":,i": (lambda i: (slice(None), i), lambda r: [_ints(r, 6, (3,))]),
    "i,:,j": (lambda i, j: (i, slice(None), j), lambda r: [_ints(r, 5, (2, 3)), _ints(r, 7, (3,))]),
    "i,j bcast": (lambda i, j: (i, j), lambda r: [_ints(r, 5, (3, 1), "uint8"), _ints(r, 6, (4,))]),
    "1,:,i": (lambda i: (1, slice(None), i), lambda r: [_ints(r, 7, (2, 2))]),
    "-1,i": (lambda i: (-1, i), lambda r: [_ints(r, 6, (5,), "uint32")]),
    ":,i,2": (lambda i: (slice(None), i, 2), lambda r: [_ints(r, 6, (3,))]),
    "1:4,i": (lambda i: (slice(1, 4), i), lambda r: [_ints(r, 6, (2,))]),
    "::-2,None,i": (lambda i: (slice(None, None, -2), None, i), lambda r: [_ints(r, 6, (3,))]),
    "...,i": (lambda i: (Ellipsis, i), lambda r: [_ints(r, 7, (4,))]),
    "i,...,j": (lambda i, j: (i, Ellipsis, j), lambda r: [_ints(r, 5, (2,)), _ints(r, 7, (2,))]),
    "i,j,k": (lambda i, j, k: (i, j, k),
              lambda r: [_ints(r, 5, (2, 1, 3)), _ints(r, 6, (4, 1)), _ints(r, 7, (3,))]),
    "empty i": (lambda i: (slice(None), i), lambda r: [np.zeros(0, "int64")]),
    "m": (lambda m: (m,), lambda r: [r.random(5) > 0.5]),
    "m2": (lambda m: (m,), lambda r: [r.random((5, 6)) > 0.3]),
    "m3": (lambda m: (m,), lambda r: [r.random((5, 6, 7)) > 0.7]),
    "m none": (lambda m: (m,), lambda r: [np.zeros((5, 6), bool)]),
    "m all": (lambda m: (m,), lambda r: [np.ones(5, bool)]),
    "m3 none": (lambda m: (m,), lambda r: [np.zeros((5, 6, 7), bool)]),
    "m3 all": (lambda m: (m,), lambda r: [np.ones((5, 6, 7), bool)]),
    ":,m": (lambda m: (slice(None), m), lambda r: [r.random(6) > 0.5]),
    "...,m": (lambda m: (Ellipsis, m), lambda r: [r.random(7) > 0.5]),
    "m,i": (lambda m, i: (m, i), lambda r: [np.array([1, 0, 1, 1, 0], bool), _ints(r, 6, (3,))]),
    "m,:,i": (lambda m, i: (m, slice(None), i),
              lambda r: [np.array([1, 0, 0, 1, 0], bool), _ints(r, 7, (1,))]),
    "i,m": (lambda i, m: (i, m), lambda r: [_ints(r, 5, (2,)), np.array([0, 0, 1, 0, 1, 0], bool)]),
    "2,m2": (lambda m: (2, m), lambda r: [r.random((6, 7)) > 0.5]),
}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8", "bool"])
def test_read(pattern: str, dtype: str) -> None:
    index, make = PATTERNS[pattern]
    rng = np.random.default_rng(len(pattern) * 7 + len(dtype))
    x = _values(rng, (5, 6, 7), dtype)
    ins = make(rng)
    _compare(lambda a, *q: a[index(*q)], [x, *ins], x[index(*ins)])


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("view", ["strided", "transposed", "reversed"])
def test_read_views(pattern: str, view: str) -> None:
    index, make = PATTERNS[pattern]
    rng = np.random.default_rng(3)
    base = rng.standard_normal((10, 14, 7)).astype("float32")
    x = {"strided": base[::2, ::2], "transposed": base[:5, :7, :6].transpose(0, 2, 1)[:, :6],
         "reversed": base[:5, :6][::-1, ::-1]}[view]
    x = x if x.shape == (5, 6, 7) else x[:5, :6, :7]
    assert x.shape == (5, 6, 7) and not x.flags.c_contiguous
    ins = make(rng)
    ins = [q[::-1] if q.ndim and q.size > 1 else q for q in ins]  # strided index arrays too
    _compare(lambda a, *q: a[index(*q)], [x, *ins], x[index(*ins)])


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("kind", ["set", "inc"])
@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_update(pattern: str, kind: str, dtype: str) -> None:
    index, make = PATTERNS[pattern]
    rng = np.random.default_rng(len(pattern) * 3 + len(kind))
    x = _values(rng, (5, 6, 7), dtype)
    ins = make(rng)
    target = x[index(*ins)].shape
    # one value per target element, and values broadcast (rows, ones, a scalar)
    broadcast = ({"set": (), "inc": target[1:]} if dtype == "float64"
                 else {"set": target[1:], "inc": (1,) * len(target)})
    for ys in (target, broadcast[kind]):
        y = _values(rng, ys, dtype)
        want = x.copy()
        if kind == "set":
            want[index(*ins)] = y
            fn = T.set_subtensor
        else:
            np.add.at(want, index(*ins), y)  # repeated indices accumulate
            fn = T.inc_subtensor
        _compare(lambda a, v, *q, fn=fn: fn(a[index(*q)], v), [x, y, *ins], want, IncSubtensor)


def test_update_bool_and_views() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((8, 6)) > 0.5
    m = rng.random(6) > 0.5
    want = x.copy()
    want[:, m] = True
    _compare(lambda a, v, q: T.set_subtensor(a[:, q], v), [x, np.ones((), bool), m], want, IncSubtensor)
    xf = rng.standard_normal((12, 6)).astype("float32")[::2].T  # (6, 6), not contiguous
    i = np.array([0, 0, 5, -1, 2, 0])
    want = xf.copy()
    np.add.at(want, (i, i[::-1]), 1.0)
    _compare(lambda a, q, r: T.inc_subtensor(a[q, r], np.float32(1.0)), [xf, i, i[::-1].copy()], want,
             IncSubtensor)


def test_empty_data() -> None:
    x = np.zeros((0, 3), "float32")
    _compare(lambda a, m: a[m], [x, np.zeros(0, bool)], x[np.zeros(0, bool)])
    _compare(lambda a, q: a[:, q], [x, np.array([0, 2, -1])], x[:, [0, 2, -1]])
    _compare(lambda a, q, r: a[q, r], [np.zeros((3, 3), "float32"), np.zeros(0, "int64"), np.array([1])],
             np.zeros(0, "float32"))


def _raises_like_py(build: Callable, args: list[np.ndarray]) -> None:
    syms = [_sym(a, f"a{k}") for k, a in enumerate(args)]
    out = build(*syms)
    fn = graphc.function(syms, out, mode=NATIVE, on_unused_input="ignore")
    ref = graphc.function(syms, out, mode="PY", on_unused_input="ignore")
    assert fn.native_kernels()
    with pytest.raises(Exception) as want:
        ref(*args)
    with pytest.raises(type(want.value)) as got:
        fn(*args)
    assert str(got.value).splitlines()[0] == str(want.value).splitlines()[0]


BAD = {
    "i,j": lambda a, q, r: a[q, r],
    ":,j": lambda a, q, r: a[:, r] + T.sum(q),
    "inc i,j": lambda a, q, r: T.inc_subtensor(a[q, r], 1.0),
    "set j,i": lambda a, q, r: T.set_subtensor(a[r, q], 1.0),
}


@pytest.mark.parametrize("form", sorted(BAD))
@pytest.mark.parametrize("bad", [4, -5, 2**40, -(2**62)])
def test_out_of_range_raises(form: str, bad: int) -> None:
    x = np.zeros((4, 4), "float32")
    _raises_like_py(BAD[form], [x, np.array([0, 1, 2]), np.array([0, bad, 1])])
    _raises_like_py(BAD[form], [x, np.array([[0], [1]]), np.array([0, bad])])


def test_out_of_range_edge_cases() -> None:
    x = np.zeros((3, 4), "float32")
    _raises_like_py(lambda a, q: a[5, q], [x, np.array([0])])  # a scalar is always checked
    _raises_like_py(lambda a, q: a[5, q], [x, np.zeros(0, "int64")])
    _raises_like_py(lambda a, q: a[q, 1:1], [x, np.array([7])])  # an empty slice: still checked
    _raises_like_py(lambda a, q: a[:, q], [np.zeros((0, 4), "float32"), np.array([9])])
    huge = np.array([2**64 - 1, 2**63], "uint64")  # NumPy reads these as -1 and -2**63
    _raises_like_py(lambda a, q: a[:, q], [x, huge])
    _compare(lambda a, q: a[:, q], [x, huge[:1]], x[:, [-1]])
    s, a, q = T.lscalar("s"), T.fmatrix("a"), T.lvector("q")
    native = graphc.function([a, s, q], a[s, q], mode=NATIVE)
    ref = graphc.function([a, s, q], a[s, q], mode="PY")
    np.testing.assert_array_equal(native(x, -3, [1, 2]), ref(x, -3, [1, 2]))
    for bad in (3, -4, 2**40):
        with pytest.raises(Exception) as e:
            ref(x, bad, [1])
        with pytest.raises(type(e.value)):
            native(x, bad, [1])
    u = T.tensor("uint64", shape=(), name="u")
    native = graphc.function([a, u, q], a[u, q], mode=NATIVE)
    ref = graphc.function([a, u, q], a[u, q], mode="PY")
    np.testing.assert_array_equal(native(x, np.uint64(2), [1, 2]), ref(x, np.uint64(2), [1, 2]))
    with pytest.raises(Exception) as e:  # a scalar is a Python int to NumPy: no wrap-around
        ref(x, np.uint64(2**64 - 1), [1])
    with pytest.raises(type(e.value)):
        native(x, np.uint64(2**64 - 1), [1])


def test_wrong_shapes_raise() -> None:
    x = np.zeros((3, 4), "float32")
    _raises_like_py(lambda a, m: a[m], [x, np.ones(4, bool)])
    _raises_like_py(lambda a, m: a[m], [x, np.ones((3, 5), bool)])
    _raises_like_py(lambda a, m: a[:, m], [x, np.ones(3, bool)])
    _raises_like_py(lambda a, m: T.set_subtensor(a[m], 1.0), [x, np.ones(2, bool)])
    _raises_like_py(lambda a, q, r: a[q, r], [x, np.array([0, 1]), np.array([0, 1, 2])])
    _raises_like_py(lambda a, m, q: a[m, q], [x, np.array([1, 1, 0], bool), np.array([0, 1, 2])])
    _raises_like_py(lambda a, v, m: T.inc_subtensor(a[m], v), [x, np.ones((3, 4), "float32"),
                                                              np.array([1, 0, 1], bool)])
    _raises_like_py(lambda a, v, q: T.set_subtensor(a[:, q], v), [x, np.ones((3, 3), "float32"),
                                                                  np.array([0, 1])])


def test_changing_masks_and_indices_between_calls() -> None:
    """The same shapes with other mask contents / index values (a plan must not replay stale
    sizes or skip the checks)."""
    a, q = T.fmatrix("a"), T.lvector("q")
    m = T.tensor("bool", shape=(None,), name="m")
    outs = [a[m] * 2.0, T.inc_subtensor(a[m, :], 1.0), a[:, q] + 1.0, T.inc_subtensor(a[q, q], 1.0)]
    fn = graphc.function([a, m, q], outs, mode=NATIVE)
    ref = graphc.function([a, m, q], outs, mode="PY")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 6)).astype("float32")
    for _ in range(6):
        mv = rng.random(6) > 0.5
        qv = rng.integers(-6, 6, 4)
        for got, want in zip(fn(x, mv, qv), ref(x, mv, qv)):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(Exception) as e:
        ref(x, mv, np.array([0, 6, 1, 1]))
    with pytest.raises(type(e.value)):
        fn(x, mv, np.array([0, 6, 1, 1]))
    for got, want in zip(fn(x, mv, qv), ref(x, mv, qv)):
        np.testing.assert_array_equal(got, want)


GRADS = {
    "i,j": (lambda a, q, r: T.sum(T.sqr(a[q, r])), [np.array([0, 2, 2, -1]), np.array([1, 1, 1, 0])]),
    ":,j": (lambda a, q: T.sum(T.sin(a[:, q])), [np.array([[0, 2], [2, 2]])]),
    "m": (lambda a, m: T.sum(T.sqr(a[m])), [np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0]], bool)]),
    "i,:,j": (lambda a, q, r: T.sum(T.exp(a[q, :, r])), [np.array([0, 0]), np.array([[1], [2]])]),
}


@pytest.mark.parametrize("form", sorted(GRADS))
def test_gradients_native(form: str) -> None:
    build, idx = GRADS[form]
    rng = np.random.default_rng(4)
    shape = (3, 3, 3) if form == "i,:,j" else (3, 3)
    x = rng.standard_normal(shape)
    graphc.gradient.verify_grad(lambda a: build(a, *[T.constant(i) for i in idx]), [x])
    a = T.tensor("float64", shape=(None,) * len(shape), name="a")
    syms = [_sym(i, f"i{k}") for k, i in enumerate(idx)]
    g = graphc.grad(build(a, *syms), a)
    fn = graphc.function([a, *syms], g, mode=NATIVE)
    ref = graphc.function([a, *syms], g, mode="PY")
    assert any(isinstance(n.op, IncSubtensor) for n, _ in fn.native_kernels())
    np.testing.assert_allclose(fn(x, *idx), ref(x, *idx), rtol=1e-12)


def test_plans_replay_the_checked_kernel() -> None:
    """Without masks or slice bounds the node's one kernel call joins a plan, which still
    checks every index; masks (several calls, sizes from the data) keep the per-node path."""
    a, q, r = T.fmatrix("a"), T.lvector("q"), T.lvector("r")
    outs = [a[q, r] * 2.0, T.inc_subtensor(a[q, r], 1.0)]
    fn = graphc.function([a, q, r], outs, mode=NATIVE)
    ref = graphc.function([a, q, r], outs, mode="PY")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 6)).astype("float32")
    for _ in range(4):
        qv, rv = rng.integers(-6, 6, 4), rng.integers(-6, 6, 4)
        for got, want in zip(fn(x, qv, rv), ref(x, qv, rv)):
            np.testing.assert_array_equal(got, want)
    assert fn._plan is not None, fn._plan_why
    with pytest.raises(Exception) as e:
        ref(x, np.array([0, 1, 2, 6]), rv)
    with pytest.raises(type(e.value), match="out of bounds"):
        fn(x, np.array([0, 1, 2, 6]), rv)
    m = T.tensor("bool", shape=(None,), name="m")
    fm = graphc.function([a, m], a[m] * 2.0, mode=NATIVE)
    for _ in range(4):
        mv = rng.random(6) > 0.5
        np.testing.assert_array_equal(fm(x, mv), x[mv] * 2.0)
    assert fm._plan is None


@pytest.mark.parametrize("bounds", [(1, 4, 1), (-1, None, -2), (5, 0, -1), (3, 3, 1), (0, 9, 0)])
def test_symbolic_slices_and_scalars(bounds: tuple) -> None:
    a, q = T.tensor("float32", shape=(None, None, None), name="a"), T.ivector("q")
    s, e, k, c = T.lscalar("s"), T.lscalar("e"), T.lscalar("k"), T.iscalar("c")
    start, stop, step = bounds
    outs = [a[s:e:k, q], a[c, s:e:k, q], T.inc_subtensor(a[s:e:k, q, c], 1.0),
            T.set_subtensor(a[q, s:e:k], 2.0)]
    x = np.random.default_rng(1).standard_normal((6, 6, 6)).astype("float32")
    qv = np.array([0, -1, 2, 2], "int32")
    for out in outs:
        sym = [v for v in (a, q, s, e, k, c) if v in graphc.graph.basic.graph_inputs([out])]
        fn = graphc.function(sym, out, mode=NATIVE)
        ref = graphc.function(sym, out, mode="PY")
        assert fn.native_kernels()
        vals = {a: x, q: qv, s: start if start is not None else 0, e: stop if stop is not None else -7,
                k: step, c: -2}
        args = [vals[v] for v in sym]
        if step == 0:
            with pytest.raises(Exception) as err:
                ref(*args)
            with pytest.raises(type(err.value)):
                fn(*args)
            continue
        got, want = fn(*args), ref(*args)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_other_dtypes_and_debug_mode() -> None:
    """float16 data runs the reference (no kernel); int8 increments wrap as np.add.at's;
    uint64 / int8 index arrays; DEBUG mode (native checked against the reference per call)."""
    a16, q, r = T.tensor("float16", shape=(None, None), name="a"), T.lvector("q"), T.lvector("r")
    fn = graphc.function([a16, q, r], a16[q, r], mode=NATIVE)
    assert not fn.native_kernels()
    x16 = np.arange(12, dtype="float16").reshape(3, 4)
    np.testing.assert_array_equal(fn(x16, [0, 2], [1, -1]), x16[[0, 2], [1, -1]])
    x8 = np.full((3, 4), 120, "int8")
    i = np.array([0, 0, 2], "uint64")
    j = np.array([1, 1, -1], "int8")
    want = x8.copy()
    np.add.at(want, (i, j), np.int8(5))
    _compare(lambda a, p, s: T.inc_subtensor(a[p, s], np.int8(5)), [x8, i, j], want, IncSubtensor)
    a, m = T.fmatrix("a"), T.tensor("bool", shape=(None, None), name="m")
    outs = [a[q, r], a[m], T.inc_subtensor(a[m], 1.0), a[:, q], T.set_subtensor(a[q, ::2], 3.0)]
    debug = graphc.function([a, q, r, m], outs, mode="DEBUG")
    x = np.random.default_rng(0).standard_normal((6, 6)).astype("float32")
    got = debug(x, np.array([0, -1, 3]), np.array([1, 1, 1]), x > 0)
    assert [g.shape for g in got] == [(3,), (int((x > 0).sum()),), (6, 6), (6, 3), (6, 6)]


def test_indices_written_by_another_thread_never_escape() -> None:
    """Kernels run without the GIL: another thread may rewrite index arrays and masks between
    the runner's checks and the kernel's reads, or during them. The kernel checks what it
    reads, so a call returns or raises, and memory outside the arrays is never touched."""
    import threading

    from graphc.backend.reference import NodeRuntimeError

    a, q = T.fmatrix("a"), T.lvector("q")
    m = T.tensor("bool", shape=(None, None), name="m")
    outs = [a[q, q], a[m], T.inc_subtensor(a[m], 1.0), a[:, m[0]], T.set_subtensor(a[m[:, 0], :2], 2.0)]
    fn = graphc.function([a, q, m], outs, mode=NATIVE)
    x = np.ones((64, 64), "float32")
    qv = np.zeros(20000, np.int64)
    mv = np.zeros((64, 64), bool)
    stop = threading.Event()

    def scribble() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            qv[k % qv.size] = 10**9 if k % 3 == 0 else 0
            qv[(k * 7) % qv.size] = 0
            mv[:] = k % 2 == 0
            mv[k % 64, :] = True

    t = threading.Thread(target=scribble)
    t.start()
    try:
        for _ in range(100):
            try:
                fn(x, qv, mv)
            except NodeRuntimeError:
                pass
    finally:
        stop.set()
        t.join()


def _random_index(rng: np.random.Generator, shape: tuple) -> tuple:
    """A random index on ``shape`` with at least one array or mask: arrays of broadcasting
    shapes, masks (now and then of a wrong shape), ints, slices, None, one Ellipsis; some
    indices out of range."""
    items: list = []
    axis, bshape, arrays = 0, (int(rng.integers(0, 4)),) * int(rng.integers(1, 3)), 0
    while axis < len(shape) or not arrays:
        if axis >= len(shape):
            return _random_index(rng, shape)
        n, r = shape[axis], rng.random()
        if r < 0.3:
            sh = tuple(int(rng.choice([1, d])) for d in bshape)[int(rng.integers(0, len(bshape))):]
            out = int(rng.random() < 0.05)
            items.append(rng.integers(-n - out, n + out, sh or bshape[-1:]) if n + out else np.zeros(sh, int))
            axis, arrays = axis + 1, arrays + 1
        elif r < 0.42:
            k = int(rng.integers(1, min(2, len(shape) - axis) + 1))
            msh = list(shape[axis: axis + k])
            msh[0] += int(rng.random() < 0.05)
            items.append(rng.random(msh) > 0.5)
            axis, arrays = axis + k, arrays + 1
        elif r < 0.55:
            items.append(int(rng.integers(-n, n)) if n else 0)
            axis += 1
        elif r < 0.75:
            a, b, c = (rng.choice([None, -2, -1, 0, 1, 2, 5]) for _ in range(3))
            items.append(slice(a, b, c or None))
            axis += 1
        elif r < 0.85:
            items.append(None)
        elif not any(i is Ellipsis for i in items):
            items.append(Ellipsis)
            axis += int(rng.integers(0, len(shape) - axis + 1))
        else:
            items.append(slice(None))
            axis += 1
    return tuple(items)


@pytest.mark.parametrize("seed", range(12))
def test_random_indices_against_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(4):
        shape = tuple(int(rng.integers(0 if rng.random() < 0.1 else 1, 5)) for _ in range(rng.integers(1, 5)))
        x = rng.standard_normal(shape).astype(rng.choice(["float32", "float64", "int32"]))
        idx = _random_index(rng, shape)
        arrays = [i for i in idx if isinstance(i, np.ndarray)]

        def build(a: T.TensorVariable, *q: T.TensorVariable, idx: tuple = idx) -> T.TensorVariable:
            it = iter(q)
            return a[tuple(next(it) if isinstance(i, np.ndarray) else i for i in idx)]

        try:
            want = x[idx]
        except IndexError:
            _raises_like_py(build, [x, *arrays])
            continue
        _compare(build, [x, *arrays], want)
        y = rng.standard_normal(want.shape[int(rng.integers(0, want.ndim + 1)):]).astype(x.dtype)
        updated = x.copy()
        np.add.at(updated, idx, y)
        _compare(lambda a, v, *q: T.inc_subtensor(build(a, *q), v), [x, y, *arrays], updated, IncSubtensor)
