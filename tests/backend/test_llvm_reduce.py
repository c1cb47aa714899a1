"""Native reductions (Reduce, a Fused node's reduction, Argmax/Argmin) against the reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.compile.mode import Mode
from graphc.ops.elemwise import Elemwise
from graphc.ops.reduce import Argmax, Reduce
from graphc.rewrite.fused import Fused

NATIVE = Mode("llvm", "fast_run")
DEBUG = Mode("debug", "fast_run")


def _all_axes(nd: int) -> list:
    return [None] + [a for r in range(1, nd + 1) for a in itertools.combinations(range(nd), r)]


def _views(a: np.ndarray) -> list[np.ndarray]:
    out = [a]
    if a.ndim >= 2:
        out.append(np.ascontiguousarray(a.T).T)  # Fortran order
    if a.ndim:
        out.append(a[::-1])
        big = np.repeat(a, 2, axis=-1)
        out.append(big[..., ::2])  # strided innermost axis
    return out


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    if got.dtype.kind == "f":
        tol = 2e-5 if got.dtype == np.float32 else 1e-11
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


_CASES = [(d, s) for s in [(7,), (1000,), (3, 300)] for d in ["float32", "float64", "int32", "uint8"]]
_CASES += [(d, s) for s in [(4, 1, 5), (2, 3, 4, 5)] for d in ["float64", "int32"]]  # each a costly compile


@pytest.mark.parametrize("dtype,shape", _CASES)
def test_every_kind_over_every_axis_set(dtype: str, shape: tuple) -> None:
    nd = len(shape)
    x = T.tensor(dtype, shape=(None,) * nd, name="x")
    outs = []
    # Every axis set up to 3-d; a sample of them in 4-d (each is a kernel to compile).
    for ax in _all_axes(nd) if nd <= 3 else [None, (3,), (0, 2), (1, 3), (0, 1, 2)]:
        outs += [x.sum(axis=ax), x.max(axis=ax), x.min(axis=ax), T.argmax(x, axis=ax), T.argmin(x, axis=ax)]
        if nd <= 2:
            outs += [x.prod(axis=ax), T.all(x, axis=ax), T.any(x, axis=ax), x.sum(axis=ax, keepdims=True)]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")
    assert all(isinstance(n.op, Reduce | Argmax) or n.op.__class__.__name__ in ("Argmin", "DimShuffle")
               for n in fn.fgraph.toposort())
    assert not [n for n, _ in fn._program.fallback_nodes if not n.op.__class__.__name__ == "DimShuffle"]
    rng = np.random.default_rng(sum(shape))
    a = (rng.standard_normal(shape) * (1.5 if dtype[0] == "f" else 20)).astype(dtype)
    if dtype[0] == "f":
        a.flat[::7] = np.round(a.flat[::7])  # ties for argmax/argmin
    for view in _views(a):
        with np.errstate(over="ignore"):
            for got, want, var in zip(fn(view), ref(view), outs):
                _close(got, want)
                assert got.ndim == var.ndim


def test_sums_of_bool_and_small_ints_widen() -> None:
    b, i = T.bmatrix("b"), T.tensor("int8", shape=(None, None), name="i")
    outs = [b.sum(axis=0), b.sum(), i.sum(axis=1), i.prod(axis=0), T.all(b, axis=1), T.any(i, axis=0),
            i.sum(dtype="float32"), b.sum(dtype="int8")]
    fn = graphc.function([b, i], outs, mode=NATIVE)
    ref = graphc.function([b, i], outs, mode="PY")
    rng = np.random.default_rng(1)
    bv = rng.random((50, 70)) > 0.5
    iv = rng.integers(-128, 127, (50, 70)).astype("int8")
    for got, want in zip(fn(bv, iv), ref(bv, iv)):
        _close(got, want)


def test_float32_sum_is_accurate() -> None:
    """A float32 loop accumulating naively is off by ~5e-6 here; NumPy (pairwise) by ~3e-8."""
    x = T.fvector("x")
    fn = graphc.function([x], x.sum(), mode=NATIVE)
    v = np.random.default_rng(2).random(10**6).astype("float32")
    exact = v.astype(np.float64).sum()
    naive = float(np.cumsum(v)[-1])  # float32 accumulation in order
    tol = 2e-7
    assert abs(naive - exact) / exact > tol  # the tolerance would catch a naive loop
    got = float(fn(v))
    assert abs(got - float(v.sum())) / exact < tol
    assert abs(got - exact) / exact < 1e-7
    m = T.fmatrix("m")
    cols = graphc.function([m], m.sum(axis=0), mode=NATIVE)
    w = v.reshape(-1, 4)
    np.testing.assert_allclose(cols(w), w.astype(np.float64).sum(axis=0), rtol=1e-7)


def test_fused_reduction_is_one_native_node() -> None:
    x, y = T.fmatrix("x"), T.fmatrix("y")
    outs = [T.sum(T.exp(x) * y), T.sum(T.exp(x) * y, axis=0), T.max(x * y + 1, axis=1),
            T.sum(T.sqr(x - y), axis=1) * 0.5]
    for out in outs:
        fn = graphc.function([x, y], out, mode=NATIVE)
        ref = graphc.function([x, y], out, mode="PY")
        nodes = fn.fgraph.toposort()
        fused = [n for n in nodes if isinstance(n.op, Fused)]
        assert fused and fused[0].op.reduce is not None
        assert fused[0] in fn._program.native_nodes
        assert not any(isinstance(n.op, Elemwise | Reduce) and n.outputs[0].ndim == 2 for n in nodes)
        rng = np.random.default_rng(3)
        for sx, sy in [((30, 40), (30, 40)), ((30, 1), (30, 40)), ((1, 40), (30, 40)), ((0, 4), (0, 4))]:
            a, b = rng.standard_normal(sx).astype("float32"), rng.standard_normal(sy).astype("float32")
            try:
                want = ref(a, b)
            except NodeRuntimeError:
                with pytest.raises(NodeRuntimeError):
                    fn(a, b)
                continue
            _close(fn(a, b), want)
            _close(fn(a.T.copy().T, b[:, ::-1]), ref(a, b[:, ::-1]))


def test_nan_and_inf_follow_numpy() -> None:
    x = T.dmatrix("x")
    outs = [x.max(axis=1), x.min(axis=0), T.argmax(x, axis=1), T.argmin(x, axis=0), x.sum(axis=1),
            x.max(), T.argmax(x)]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")
    a = np.arange(20.0).reshape(4, 5)
    a[1, 3] = np.nan
    a[2, 1] = np.inf
    a[3, 0] = a[3, 4] = -np.inf
    a[0, 2] = np.nan
    for got, want in zip(fn(a), ref(a)):
        _close(got, want)


def test_empty_reductions() -> None:
    x = T.fmatrix("x")
    fn = graphc.function([x], [x.sum(axis=0), x.prod(axis=1), T.any(x, axis=0)], mode=NATIVE)
    z = np.zeros((0, 3), "float32")
    s, p, a = fn(z)
    assert s.shape == (3,) and not s.any() and p.shape == (0,) and a.shape == (3,) and not a.any()
    mx = graphc.function([x], [x.max(axis=0), T.argmin(x, axis=0)], mode=NATIVE)
    with pytest.raises(NodeRuntimeError, match="zero-size|empty"):
        mx(z)
    assert [r.shape for r in mx(np.zeros((2, 0), "float32"))] == [(0,), (0,)]


def test_bad_input_raises_never_crashes() -> None:
    x, y = T.fmatrix("x"), T.fmatrix("y")
    fn = graphc.function([x, y], T.sum(x * y, axis=1), mode=NATIVE)
    with pytest.raises((NodeRuntimeError, ValueError)):
        fn(np.ones((3, 4), "float32"), np.ones((3, 5), "float32"))
    with pytest.raises((TypeError, ValueError)):
        fn(np.ones((3, 4, 1), "float32"), np.ones((3, 4), "float32"))


def test_integer_division_by_zero_inside_a_fused_sum() -> None:
    a, b = T.imatrix("a"), T.imatrix("b")
    fn = graphc.function([a, b], T.sum(a // b + a, axis=1), mode=NATIVE)
    ref = graphc.function([a, b], T.sum(a // b + a, axis=1), mode="PY")
    x = np.arange(12, dtype="int32").reshape(3, 4)
    y = np.ones((3, 4), "int32")
    np.testing.assert_array_equal(fn(x, y), ref(x, y))
    y[1, 2] = 0
    with np.errstate(all="ignore"):
        try:
            want = ref(x, y)
        except NodeRuntimeError:
            with pytest.raises(NodeRuntimeError):
                fn(x, y)
        else:
            np.testing.assert_array_equal(fn(x, y), want)


def test_debug_mode_agrees() -> None:
    x = T.fmatrix("x")
    fn = graphc.function([x], [x.sum(axis=0), x.max(axis=1), T.argmax(x, axis=1), T.exp(x).mean()],
                         mode=DEBUG)
    fn(np.random.default_rng(4).standard_normal((64, 33)).astype("float32"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sum_to_shape_of_bias_gradients(dtype: str) -> None:
    from graphc.ops.elemwise import SumToShape

    g, b, B = T.matrix("g", dtype=dtype), T.vector("b", dtype=dtype), T.matrix("B", dtype=dtype)
    c = T.tensor(dtype, shape=(1, None), name="c")
    outs = [SumToShape()(g, b), SumToShape()(g, c), SumToShape()(g, B)]
    fn = graphc.function([g, b, B, c], outs, mode=NATIVE)
    ref = graphc.function([g, b, B, c], outs, mode="PY")
    assert sum(isinstance(n.op, SumToShape) for n in fn._program.native_nodes) == 3
    gv = np.random.default_rng(5).standard_normal((5, 4)).astype(dtype)
    z = np.zeros
    cases = [(gv, z(4, dtype), z((5, 4), dtype), z((1, 4), dtype)),
             (gv, z(4, dtype), z((5, 1), dtype), z((1, 4), dtype)),  # broadcast found at run time
             (gv[:1], z(1, dtype), z((1, 1), dtype), z((1, 1), dtype)),
             (gv[:, ::2], z(2, dtype), z((1, 2), dtype), z((1, 2), dtype))]
    for args in cases:
        for got, want in zip(fn(*args), ref(*args)):
            _close(got, want)


# -- max/min/argmax/argmin: NaN rows, ties across blocks; threaded reductions -------------------
def _extreme_rows(dtype: str, n: int = 3000) -> np.ndarray:
    """Rows longer than a block (1024) with NaN and ties placed across block boundaries."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((8, n)).astype(dtype)
    a[1] = np.nan  # all NaN
    a[2, [2500, 100, 1800]] = np.nan  # first NaN at 100
    a[3, [1500, 2900, 2000]] = 50.0  # ties for the max in different blocks
    a[3, [1700, 10]] = -50.0  # and for the min
    a[4] = -np.inf
    a[5, :] = 0.0
    a[5, 1200] = -0.0
    a[6, -1] = np.nan  # NaN in the last (partial) block only
    a[7, 1023:1025] = 9.0  # a tie straddling a block boundary
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extremes_follow_numpy_on_nan_rows_and_ties(dtype: str) -> None:
    x = T.matrix("x", dtype=dtype)
    outs = []
    for ax in (None, 0, 1):
        outs += [x.max(axis=ax), x.min(axis=ax), T.argmax(x, axis=ax), T.argmin(x, axis=ax)]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")
    a = _extreme_rows(dtype)
    for view in (a, a[::-1], a[:, ::-1], np.asfortranarray(a), a[2:4], a[3:4]):
        for got, want, var in zip(fn(view), ref(view), outs):
            _close(got, want)
            assert got.dtype == var.dtype and got.ndim == var.ndim


@pytest.mark.parametrize("dtype", ["int32", "uint8", "int64"])
def test_integer_argmax_ties_across_blocks(dtype: str) -> None:
    x = T.matrix("x", dtype=dtype)
    outs = [T.argmax(x, axis=1), T.argmin(x, axis=1), T.argmax(x), T.argmin(x, axis=0), x.max(axis=1),
            x.min()]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")
    a = np.random.default_rng(9).integers(0, 5, (4, 2600)).astype(dtype)
    a[1, 2000] = 7
    for got, want in zip(fn(a), ref(a)):
        _close(got, want)


def test_argmax_of_empty_raises_like_numpy() -> None:
    v = T.fvector("v")
    fn = graphc.function([v], [T.argmax(v)], mode=NATIVE)
    with pytest.raises(NodeRuntimeError, match="empty|zero-size"):
        fn(np.zeros(0, "float32"))


@pytest.fixture
def threaded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every reduction splits (3 threads: uneven slices), however small; the list records
    how many slices each split call ran."""
    from graphc.backend.llvm import reduce_threads

    monkeypatch.setattr(reduce_threads, "THREAD_MIN_ELEMENTS", 1)
    monkeypatch.setattr(reduce_threads, "THREADS", 3)
    calls: list[int] = []
    run_all = reduce_threads._submit_all

    def spy(jobs: list) -> int:
        calls.append(len(jobs))
        return run_all(jobs)

    monkeypatch.setattr(reduce_threads, "_submit_all", spy)
    return calls


def _split_inputs(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(10)
    a = (rng.standard_normal(shape) * (2 if dtype[0] == "f" else 30)).astype(dtype)
    if dtype[0] == "f":
        a.flat[::5] = np.round(a.flat[::5])  # ties
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_threaded_reductions_equal_single_threaded(threaded: list[int], dtype: str) -> None:
    from graphc.backend.llvm import reduce_threads

    shape = (7, 5, 301)
    x = T.tensor(dtype, shape=(None,) * 3, name="x")
    outs = []
    for ax in _all_axes(3):
        outs += [x.sum(axis=ax), x.max(axis=ax), T.argmax(x, axis=ax), T.argmin(x, axis=ax)]
    outs += [x.min(axis=(0, 2)), x.prod(axis=0), T.any(x, axis=0), T.all(x), x.mean(axis=(0, 1))]
    fn = graphc.function([x], outs, mode=NATIVE)
    ref = graphc.function([x], outs, mode="PY")

    def one(v: np.ndarray) -> list:
        reduce_threads.THREADS = 1  # read per call: the same function, single-threaded
        try:
            return fn(v)
        finally:
            reduce_threads.THREADS = 3

    a = _split_inputs(dtype, shape)
    if dtype[0] == "f":
        a[3, 2, 7] = a[5, 0, 0] = np.nan
    for view in (a, a[:, :, ::-1], a[::-1].transpose(0, 1, 2)):
        with np.errstate(over="ignore"):
            threaded.clear()
            results = fn(view)
            assert len(threaded) >= 25 and set(threaded) == {3}  # the reductions ran split
            for got, single, want in zip(results, one(view), ref(view)):
                _close(got, single)
                _close(got, want)


def test_threaded_full_and_leading_axis_reductions(threaded: list[int]) -> None:
    v, m, y = T.fvector("v"), T.fmatrix("m"), T.fmatrix("y")
    outs = [v.sum(), v.max(), v.min(), T.argmax(v), T.argmin(v), v.mean(), m.sum(axis=0), m.max(axis=0),
            T.argmax(m, axis=0), m.sum(), T.argmax(m), T.sum(T.exp(m) * y, axis=0), T.sum(m * y),
            T.max(m * y + 1, axis=1)]
    fn = graphc.function([v, m, y], outs, mode=NATIVE)
    ref = graphc.function([v, m, y], outs, mode="PY")
    rng = np.random.default_rng(12)
    vv = rng.standard_normal(100_003).astype("float32")
    mv = rng.standard_normal((1001, 37)).astype("float32")
    vv[[70_000, 90_000]] = 9.0  # a tie in the second and third slices
    mv[[600, 900], 3] = 9.0
    for yv in (rng.standard_normal((1001, 37)).astype("float32"), np.ones((1, 37), "float32")):
        threaded.clear()
        got_all = fn(vv, mv, yv)
        assert len(threaded) >= len(outs) - 2  # all ran split (mean shares the sum node)
        for got, want in zip(got_all, ref(vv, mv, yv)):
            _close(got, want)
    vv[[80_000, 5]] = np.nan  # the first NaN wins, wherever the slices fall
    mv[700, 3] = np.nan
    for got, want in zip(fn(vv, mv, yv), ref(vv, mv, yv)):
        _close(got, want)
