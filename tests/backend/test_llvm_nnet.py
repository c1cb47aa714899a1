"""Native softmax/log_softmax and the integer-label cross-entropy ops against the reference."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.compile.mode import Mode
from graphc.ops.elemwise import Elemwise
from graphc.ops.nnet import CrossentropySoftmax, LabelPick, LabelScatter, LogSoftmax, Softmax
from graphc.rewrite import Fused

NATIVE = Mode("llvm", "fast_run")
DEBUG = Mode("debug", "fast_run")
TOL = {"float32": 2e-6, "float64": 1e-13}


def _native_types(fn: graphc.compile.function.Function) -> set[type]:
    return {type(n.op) for n in fn._program.native_nodes}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,axis", [((9,), 0), ((5, 7), 1), ((5, 7), 0), ((3, 4, 6), 1), ((3, 4, 6), 2),
                                        ((2, 0), 1), ((0, 3), 1)])
def test_softmax_and_log_softmax(dtype: str, shape: tuple, axis: int) -> None:
    x = T.tensor(dtype, shape=(None,) * len(shape), name="x")
    outs = [T.nnet.softmax(x, axis=axis), T.nnet.log_softmax(x, axis=axis)]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")
    assert LogSoftmax in _native_types(fn)  # softmax became exp(log_softmax) here
    alone = graphc.function([x], outs[0], mode=NATIVE)
    assert Softmax in _native_types(alone)
    rng = np.random.default_rng(len(shape) + axis)
    a = (rng.standard_normal(shape) * 10).astype(dtype)
    views = [a, a[::-1], np.asfortranarray(a), np.repeat(a, 2, axis=-1)[..., ::2]]
    if a.size:
        b = a.copy()
        b.flat[0] = 1e30  # a huge logit: no overflow
        b.flat[-1] = -np.inf
        views.append(b)
    if a.shape[axis] == 0 and a.size == 0 and any(shape):
        for f in (fn, alone, ref):
            with pytest.raises(NodeRuntimeError, match="zero-size"):
                f(a)
        return
    for v in views:
        for got, want in zip(fn(v) + [alone(v)], ref(v) + ref(v)[:1]):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


def test_nan_rows() -> None:
    x = T.dmatrix("x")
    outs = [T.nnet.softmax(x), T.nnet.log_softmax(x)]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")
    a = np.arange(12.0).reshape(3, 4)
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    with np.errstate(invalid="ignore"):
        for got, want in zip(fn(a), ref(a)):
            np.testing.assert_allclose(got, want, rtol=1e-13, equal_nan=True)


@pytest.mark.parametrize("ldtype", ["int32", "int64", "uint8", "int8", "uint64"])
def test_crossentropy_with_labels_and_gradient(ldtype: str) -> None:
    x = T.fmatrix("x")
    y = T.tensor(ldtype, shape=(None,), name="y")
    p = T.nnet.softmax(x)
    loss = T.nnet.categorical_crossentropy(p, y).mean()
    outs = [loss, graphc.grad(loss, x), T.nnet.LabelPick()(x, y)]
    fn = graphc.function([x, y], outs, mode=NATIVE)
    ref = graphc.function([x, y], outs, mode="PY")
    assert {LabelPick, LabelScatter, CrossentropySoftmax} <= _native_types(fn)
    rng = np.random.default_rng(7)
    a = rng.standard_normal((16, 10)).astype("float32")
    lab = rng.integers(0, 10, 16).astype(ldtype)
    for got, want in zip(fn(a, lab), ref(a, lab)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    for got, want in zip(fn(a[:, ::-1], lab[::-1]), ref(a[:, ::-1], lab[::-1])):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad", [10, -1, 2**40])
def test_out_of_range_labels_raise(bad: int) -> None:
    x, y = T.dmatrix("x"), T.lvector("y")
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).sum()
    fn = graphc.function([x, y], [loss, graphc.grad(loss, x)], mode=NATIVE)
    lab = np.array([1, 2, bad, 0], "int64")
    with pytest.raises(NodeRuntimeError, match=r"labels must lie in \[0, 10\)"):
        fn(np.zeros((4, 10)), lab)
    with pytest.raises(NodeRuntimeError, match="labels"):
        fn(np.zeros((4, 10)), np.array([0, 1, 2], "int64"))  # one label short
    pick = graphc.function([x, y], T.nnet.LabelPick()(x, y), mode=NATIVE)
    with pytest.raises(NodeRuntimeError, match="labels"):
        pick(np.zeros((4, 0)), np.zeros(4, "int64"))  # no class at all
    assert pick(np.zeros((0, 0)), np.zeros(0, "int64")).shape == (0,)
    assert np.isfinite(fn(np.zeros((4, 10)), np.array([0, 9, 3, 3]))[0])


def test_unsigned_labels_beyond_int64() -> None:
    x, y = T.fmatrix("x"), T.tensor("uint64", shape=(None,), name="y")
    fn = graphc.function([x, y], T.nnet.LabelPick()(x, y), mode=NATIVE)
    with pytest.raises(NodeRuntimeError, match="labels"):
        fn(np.ones((2, 3), "float32"), np.array([0, 2**63 + 1], "uint64"))


def test_label_ops_of_higher_rank() -> None:
    x, y, g = T.dtensor3("x"), T.lmatrix("y"), T.dmatrix("g")
    outs = [T.nnet.LabelPick()(x, y), T.nnet.LabelScatter()(g, y, x)]
    fn = graphc.function([x, y, g], outs, mode=NATIVE)
    ref = graphc.function([x, y, g], outs, mode="PY")
    rng = np.random.default_rng(8)
    a, lab, gv = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4)), rng.standard_normal((3, 4))
    for got, want in zip(fn(a, lab, gv), ref(a, lab, gv)):
        np.testing.assert_array_equal(got, want)


def test_debug_mode_agrees() -> None:
    x, y = T.fmatrix("x"), T.ivector("y")
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean()
    fn = graphc.function([x, y], [loss, graphc.grad(loss, x)], mode=DEBUG)
    fn(np.random.default_rng(9).standard_normal((8, 5)).astype("float32"), np.arange(8, dtype="int32") % 5)


# ---------------------------------------------------------------------------------------
# CrossentropySoftmax and sigmoid_binary_crossentropy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ldtype", ["int32", "int64", "uint8"])
def test_crossentropy_softmax_native(dtype: str, ldtype: str) -> None:
    x = T.tensor(dtype, shape=(None, None), name="x")
    y = T.tensor(ldtype, shape=(None,), name="y")
    t = T.tensor(dtype, shape=(None, None), name="t")
    op = CrossentropySoftmax()
    outs = [*op(x, y), *op(x, t)]
    fn = graphc.function([x, y, t], outs, mode=NATIVE)
    ref = graphc.function([x, y, t], outs, mode="PY")
    assert CrossentropySoftmax in _native_types(fn) and not fn._program.fallback_nodes
    rng = np.random.default_rng(11)
    for shape in [(7, 5), (1, 1), (0, 4), (3, 300)]:
        a = (rng.standard_normal(shape) * 10).astype(dtype)
        if a.size:
            a.flat[0], a.flat[-1] = 1000, -1000  # finite where exp overflows
        lab = rng.integers(0, shape[1], shape[0]).astype(ldtype)
        tv = rng.uniform(size=shape).astype(dtype)
        for args in [(a, lab, tv), (a[::-1], lab[::-1], tv[::-1]), (np.asfortranarray(a), lab, tv),
                     (a[:, ::-1], lab, np.asfortranarray(tv))]:
            for got, want in zip(fn(*args), ref(*args)):
                assert got.dtype == want.dtype and got.shape == want.shape
                assert np.isfinite(got).all()
                np.testing.assert_allclose(got, want, rtol=TOL[dtype] * 10, atol=TOL[dtype])


@pytest.mark.parametrize("tshape", [(1, 6), (4, 1), (1, 1), (4, 6)])
def test_crossentropy_softmax_broadcast_targets(tshape: tuple) -> None:
    x = T.dmatrix("x")
    t = T.tensor("float64", shape=(None, None), name="t")
    outs = list(CrossentropySoftmax()(x, t))
    fn = graphc.function([x, t], outs, mode=NATIVE)
    ref = graphc.function([x, t], outs, mode="PY")
    rng = np.random.default_rng(12)
    a, tv = rng.standard_normal((4, 6)), rng.uniform(size=tshape)
    for got, want in zip(fn(a, tv), ref(a, tv)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    # logits broadcast up to the targets' rows: the reference's broadcasting, same values
    got, want = fn(a[:1], rng.uniform(size=(3, 6))), ref(a[:1], rng.uniform(size=(3, 6)))
    assert got[0].shape == want[0].shape == (3,)
    with pytest.raises(NodeRuntimeError, match="broadcast"):
        fn(a, rng.uniform(size=(4, 5)))


@pytest.mark.parametrize("bad", [5, -1, 2**40])
def test_crossentropy_softmax_bad_labels_raise(bad: int) -> None:
    x, y = T.dmatrix("x"), T.lvector("y")
    loss = CrossentropySoftmax()(x, y)[0].sum()
    fn = graphc.function([x, y], [loss, graphc.grad(loss, x)], mode=NATIVE)
    with pytest.raises(NodeRuntimeError, match=r"labels must lie in \[0, 5\)"):
        fn(np.zeros((3, 5)), np.array([0, bad, 1]))
    with pytest.raises(NodeRuntimeError, match="labels"):
        fn(np.zeros((3, 5)), np.array([0, 1]))  # one label short
    with pytest.raises(NodeRuntimeError, match="no class"):
        fn(np.zeros((3, 0)), np.array([0, 0, 0]))
    assert np.isfinite(fn(np.zeros((3, 5)), np.array([0, 4, 2]))[0])


def test_crossentropy_training_step_native_matches_reference() -> None:
    x, y, t = T.fmatrix("x"), T.ivector("y"), T.fmatrix("t")
    cost = (T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean()
            + T.nnet.categorical_crossentropy(T.nnet.softmax(x), t).mean()
            + T.nnet.binary_crossentropy(T.nnet.sigmoid(x), t).mean())
    outs = [cost, graphc.grad(cost, x)]
    fn = graphc.function([x, y, t], outs, mode=NATIVE)
    dbg = graphc.function([x, y, t], outs, mode=DEBUG)
    ref = graphc.function([x, y, t], outs, mode="PY")
    assert CrossentropySoftmax in _native_types(fn)
    computing = (CrossentropySoftmax, LabelScatter, Elemwise, Fused)
    assert not [n for n, _ in fn._program.fallback_nodes if isinstance(n.op, computing)]
    rng = np.random.default_rng(13)
    a = (rng.standard_normal((8, 5)) * 1000).astype("float32")
    lab = rng.integers(0, 5, 8).astype("int32")
    tv = np.eye(5, dtype="float32")[rng.integers(0, 5, 8)]
    for got, want in zip(fn(a, lab, tv), ref(a, lab, tv)):
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    dbg(a, lab, tv)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_binary_crossentropy_native(dtype: str) -> None:
    x, t = T.tensor(dtype, shape=(None, None), name="x"), T.tensor(dtype, shape=(None, None), name="t")
    out = T.nnet.sigmoid_binary_crossentropy(x, t)
    plain = graphc.Mode("llvm", "fast_run", excluding=["fusion"])
    fn = graphc.function([x, t], out, mode=plain)
    ref = graphc.function([x, t], out, mode="PY")
    assert [n.op.scalar_op.name for n in fn._program.native_nodes] == ["sigmoid_binary_crossentropy"]
    rng = np.random.default_rng(14)
    a = (rng.standard_normal((6, 7)) * 30).astype(dtype)
    a[0, :4] = [1000, -1000, np.inf, np.nan]
    tv = rng.uniform(size=(6, 7)).astype(dtype)
    with np.errstate(invalid="ignore"):
        for args in [(a, tv), (a, tv[:1]), (a.T, tv.T)]:
            got, want = fn(*args), ref(*args)
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=TOL[dtype] * 10, atol=TOL[dtype], equal_nan=True)


# ---------------------------------------------------------------------------------------
# Rows run on vectors (graphc.backend.llvm.nnet_rows): lengths around the vector widths
# (8 and 16 lanes), NaN/inf anywhere in a row; rows not contiguous along the axis are
# made so by the runner first.
ROW_LENGTHS = list(range(1, 41))


def _row_functions(dtype: str, ldtype: str = "int32") -> dict[str, tuple]:
    x = T.tensor(dtype, shape=(None, None), name="x")
    y = T.tensor(ldtype, shape=(None,), name="y")
    t = T.tensor(dtype, shape=(None, None), name="t")
    graphs = {"softmax": ([x], [T.nnet.softmax(x)]), "log_softmax": ([x], [T.nnet.log_softmax(x)]),
              "xent": ([x, y, t], [*CrossentropySoftmax()(x, y), *CrossentropySoftmax()(x, t)])}
    fns = {}
    for key, (ins, outs) in graphs.items():
        fn = graphc.function(ins, outs, mode=NATIVE)
        assert fn._program.native_nodes and not fn._program.fallback_nodes
        for node in fn._program.native_nodes:
            assert "llvm.masked.load" in fn.llvm_ir(node, optimized=False)
        fns[key] = (fn, graphc.function(ins, outs, mode="PY"))
    return fns


def _agree(fns: dict[str, tuple], a: np.ndarray, lab: np.ndarray, tv: np.ndarray, tol: float) -> None:
    for key, (fn, ref) in fns.items():
        args = (a, lab, tv) if key == "xent" else (a,)
        with np.errstate(invalid="ignore", over="ignore"):
            got, want = fn(*args), ref(*args)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True, err_msg=f"{key} {a.shape}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_rows_of_every_length(dtype: str) -> None:
    fns = _row_functions(dtype)
    rng = np.random.default_rng(21)
    for n in ROW_LENGTHS:
        for rows in (1, 37):
            a = (rng.standard_normal((rows, n)) * 10).astype(dtype)
            lab = rng.integers(0, n, rows).astype("int32")
            tv = rng.uniform(size=(rows, n)).astype(dtype)
            _agree(fns, a, lab, tv, TOL[dtype] * 10)
            if rows > 1:
                # rows apart in memory but contiguous along the axis; targets broadcast over rows
                wide = np.concatenate([a, a], axis=1)[:, n:]
                _agree(fns, wide, lab, tv[:1], TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_rows_nan_inf_and_large(dtype: str) -> None:
    fns = _row_functions(dtype, "int64")
    rng = np.random.default_rng(22)
    big = 1e30 if dtype == "float32" else 1e300
    for n in (1, 5, 8, 10, 16, 17, 33):
        rows = 12
        a = (rng.standard_normal((rows, n)) * 3).astype(dtype)
        a[0, -1] = np.nan                       # the last element (the tail of a vector)
        a[1, 0] = np.nan                        # the first
        a[2, n // 2] = np.inf
        a[3, :] = -np.inf                       # every element -inf: NaN, as NumPy
        a[4, 0], a[4, -1] = big, -big           # huge logits: no overflow
        a[5, :] = 1000.0                        # exp overflows without the max
        a[6, -1] = -1000.0
        a[7, :] = np.inf
        a[8, 0] = -np.inf
        a[9, n - 1] = big
        a[10, :] = -big
        if n > 1:
            a[11, 1] = np.nan
            a[11, 0] = np.inf
        lab = rng.integers(0, n, rows).astype("int64")
        tv = rng.uniform(size=(rows, n)).astype(dtype)
        _agree(fns, a, lab, tv, TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_rows_of_other_layouts(dtype: str) -> None:
    fns = _row_functions(dtype)
    rng = np.random.default_rng(23)
    for n in (3, 10, 16, 19):
        a = (rng.standard_normal((9, 2 * n)) * 5).astype(dtype)
        lab = rng.integers(0, n, 9).astype("int32")
        tv = rng.uniform(size=(9, 2 * n)).astype(dtype)
        for xa, ta in [(a[:, ::2], tv[:, ::2]), (a[:, :n][:, ::-1], tv[:, :n]),
                       (np.asfortranarray(a[:, :n]), np.asfortranarray(tv[:, :n])),
                       (a[:, :n], tv[:, :1]), (a[::-1, :n], tv[::-1, :n])]:
            _agree(fns, xa, lab, ta, TOL[dtype] * 10)


def test_vector_rows_softmax_of_higher_rank() -> None:
    x = T.dtensor3("x")
    outs = [T.nnet.softmax(x, axis=2)]
    fn, ref = graphc.function([x], outs, mode=NATIVE), graphc.function([x], outs, mode="PY")
    lfn = graphc.function([x], T.nnet.log_softmax(x, axis=2), mode=NATIVE)
    lref = graphc.function([x], T.nnet.log_softmax(x, axis=2), mode="PY")
    a = np.random.default_rng(24).standard_normal((5, 7, 11)) * 4
    for v in (a, a.transpose(1, 0, 2), a[:, ::2], np.zeros((3, 0, 4)), np.zeros((0, 2, 4))):
        np.testing.assert_allclose(fn(v), ref(v), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(lfn(v), lref(v), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_rows_long_rows_and_rank_four(dtype: str) -> None:
    fns = _row_functions(dtype)
    rng = np.random.default_rng(26)
    for shape in [(1, 4099), (3, 1000), (17, 257)]:
        a = (rng.standard_normal(shape) * 8).astype(dtype)
        a[-1, -1] = 50
        _agree(fns, a, rng.integers(0, shape[1], shape[0]).astype("int32"),
               rng.uniform(size=shape).astype(dtype), TOL[dtype] * 10)
    x = T.tensor(dtype, shape=(None,) * 4, name="x")
    for op in (T.nnet.softmax, T.nnet.log_softmax):
        out = op(x, axis=3)
        fn, ref = graphc.function([x], out, mode=NATIVE), graphc.function([x], out, mode="PY")
        a = rng.standard_normal((2, 3, 4, 21)).astype(dtype)
        for v in (a, a.transpose(2, 0, 1, 3), a[..., ::3], a[:, ::-1]):
            np.testing.assert_allclose(fn(v), ref(v), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("n", [1, 10, 16, 17, 40])
def test_vector_rows_bad_label_in_a_later_row(n: int) -> None:
    x, y = T.fmatrix("x"), T.ivector("y")
    fn = graphc.function([x, y], list(CrossentropySoftmax()(x, y)), mode=NATIVE)
    lab = np.zeros(40, "int32")
    lab[33] = n
    with pytest.raises(NodeRuntimeError, match=rf"labels must lie in \[0, {n}\)"):
        fn(np.zeros((40, n), "float32"), lab)
    lab[33] = n - 1
    loss, sm = fn(np.zeros((40, n), "float32"), lab)
    np.testing.assert_allclose(loss, np.full(40, np.log(n)), rtol=1e-6)
    np.testing.assert_allclose(sm, np.full((40, n), 1 / n), rtol=1e-6)


def _before_a_guard_page(shape: tuple, dtype: str) -> tuple[np.ndarray, object]:
    """An array whose last byte is the last of a page followed by an inaccessible page."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = (nbytes // page + 2) * page
    mm = mmap.mmap(-1, size)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + size - page, page, 0) == 0  # PROT_NONE
    arr = np.frombuffer(mm, dtype=dtype, count=int(np.prod(shape)), offset=size - page - nbytes)
    return arr.reshape(shape), mm


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_vector_rows_read_nothing_past_the_row(dtype: str) -> None:
    fns = _row_functions(dtype)
    rng = np.random.default_rng(25)
    keep = []
    for n in (1, 3, 10, 17):
        a, mm = _before_a_guard_page((4, n), dtype)
        tv, mm2 = _before_a_guard_page((4, n), dtype)
        keep += [mm, mm2]
        a[:] = rng.standard_normal((4, n))
        tv[:] = rng.uniform(size=(4, n))
        _agree(fns, a, rng.integers(0, n, 4).astype("int32"), tv, TOL[dtype] * 10)
    del keep
