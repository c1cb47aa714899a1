"""Native small/skinny products (graphc.backend.llvm.small_gemm) behind the Dot, Gemm and
MatMul kernels, against the reference evaluator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import blas, blas_source, small_gemm
from graphc.compile.mode import Mode
from graphc.rewrite.gemm import Gemm

NATIVE = Mode("llvm", "fast_run")
pytestmark = pytest.mark.skipif(not blas_source.blas_available(), reason="SciPy's BLAS is not available")
RTOL = {"float32": 3e-5, "float64": 1e-12}


@pytest.fixture(autouse=True)
def every_size() -> None:
    """Every product with a small dimension runs natively (by default only the sizes where
    that measured faster than BLAS do: small_gemm.MIN_WORK, MAX_WORK)."""
    old = small_gemm.set_limits(0.0, float("inf"))
    for dtype in DTYPES:
        assert small_gemm.ready(dtype, wait=True)
    yield
    small_gemm.set_limits(*old)
DTYPES = ["float32", "float64"]


def _check(got: np.ndarray, want: np.ndarray, dtype: str, k: int) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    tol = RTOL[dtype] * max(1.0, np.sqrt(k))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _layout(a: np.ndarray, how: str) -> np.ndarray:
    """``a``'s values as C-contiguous, a transposed view (F order), or an unaligned-start
    row-major view (a column offset in a wider array)."""
    if how == "F":
        return np.asfortranarray(a)
    if how == "S":
        big = np.zeros((a.shape[0], a.shape[1] + 3), a.dtype)
        big[:, 1:1 + a.shape[1]] = a
        return big[:, 1:1 + a.shape[1]]
    return np.ascontiguousarray(a)


@pytest.fixture(scope="module")
def fns() -> dict:
    out = {}
    for dtype in DTYPES:
        A, B = T.matrix("A", dtype=dtype), T.matrix("B", dtype=dtype)
        C, v = T.matrix("C", dtype=dtype), T.vector("v", dtype=dtype)
        s = T.scalar("s", dtype=dtype)
        outs = [T.dot(A, B), C - s * T.dot(A, B), T.dot(A, B) * 0.5 + v]
        out[dtype] = (graphc.function([A, B, C, v, s], outs, mode=NATIVE),
                      graphc.function([A, B, C, v, s], outs, mode="PY"))
    return out


def _run(fns: dict, dtype: str, m: int, k: int, n: int, la: str, lb: str, seed: int) -> None:
    fn, ref = fns[dtype]
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    v = rng.standard_normal(n).astype(dtype)
    s = np.asarray(rng.standard_normal(), dtype)
    for got, want in zip(fn(_layout(a, la), _layout(b, lb), c, v, s), ref(a, b, c, v, s)):
        _check(got, want, dtype, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 3, 17, 64, 301])
def test_skinny_shapes_and_layouts(fns: dict, dtype: str, m: int) -> None:
    """n and k around the criterion (16) and the vector widths (8, 16, 32), both layouts of
    each operand: Dot, Gemm with alpha/beta and with a broadcast bias row."""
    dims = [1, 2, 5, 8, 15, 16, 17, 20]
    for i, (k, n) in enumerate(itertools.product(dims, dims)):
        la, lb = "CF"[i % 2], "CF"[(i // 2) % 2]
        _run(fns, dtype, m, k, n, la, lb, seed=i)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,k,n", [(256, 512, 10), (256, 10, 512), (512, 256, 10), (10, 256, 512),
                                   (512, 10, 256), (3, 700, 33), (700, 3, 1), (1, 1000, 1),
                                   (16, 16, 16), (33, 48, 47), (2000, 16, 40), (40, 1100, 16)])
def test_larger_skinny_products(fns: dict, dtype: str, m: int, k: int, n: int) -> None:
    """The W3 step's shapes, k past the packing chunks, unaligned starts, every layout pair."""
    for la, lb in itertools.product("CFS", "CF"):
        _run(fns, dtype, m, k, n, la, lb, seed=m + k + n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_update_and_vectors(dtype: str) -> None:
    """A Gemm updating a shared matrix (the plan writes it in place, beta 1), and products
    with vectors, through several calls (the plan takes over after the first)."""
    rng = np.random.default_rng(7)
    W = graphc.shared(rng.standard_normal((40, 10)).astype(dtype), name="W")
    H, d = T.matrix("H", dtype=dtype), T.matrix("d", dtype=dtype)
    x = T.vector("x", dtype=dtype)
    fn = graphc.function([H, d, x], [T.dot(x, W), T.dot(W, x[:10])], updates=[(W, W - 0.01 * T.dot(H.T, d))],
                         mode=NATIVE)
    assert any(isinstance(nd.op, Gemm) for nd in fn.fgraph.toposort())
    w = W.get_value().copy()
    for _ in range(4):
        h = rng.standard_normal((33, 40)).astype(dtype)
        dd = rng.standard_normal((33, 10)).astype(dtype)
        xv = rng.standard_normal(40).astype(dtype)
        o1, o2 = fn(h, dd, xv)
        _check(o1, xv @ w, dtype, 40)
        _check(o2, w @ xv[:10], dtype, 10)
        w = w - np.asarray(0.01, dtype) * (h.T @ dd)
        _check(W.get_value(), w, dtype, 33)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_matmul_small(dtype: str) -> None:
    a = T.tensor(dtype, shape=(None, None, None), name="a")
    b = T.tensor(dtype, shape=(None, None), name="b")
    fn = graphc.function([a, b], T.matmul(a, b), mode=NATIVE)
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((3, 20, 12)).astype(dtype), rng.standard_normal((12, 7)).astype(dtype)
    _check(fn(x, y), np.matmul(x, y), dtype, 12)
    xt = np.swapaxes(np.swapaxes(x, 1, 2).copy(), 1, 2)
    _check(fn(xt, np.asfortranarray(y)), np.matmul(x, y), dtype, 12)


def test_empty_and_odd_strides_keep_their_paths(fns: dict) -> None:
    fn, ref = fns["float32"]
    z = np.zeros((4, 0), "float32")
    got = fn(z, np.zeros((0, 3), "float32"), np.ones((4, 3), "float32"), np.ones(3, "float32"),
             np.asarray(2, "float32"))
    assert not got[0].any() and (got[1] == 1).all()
    rng = np.random.default_rng(9)
    a = rng.standard_normal((30, 24)).astype("float32")[::2, ::3]  # no unit stride: the reference
    b = rng.standard_normal((8, 5)).astype("float32")
    args = (a, b, np.ones((15, 5), "float32"), np.ones(5, "float32"), np.asarray(1, "float32"))
    for got, want in zip(fn(*args), ref(np.ascontiguousarray(a), *args[1:])):
        _check(got, want, "float32", 8)


@pytest.fixture
def no_blas(monkeypatch: pytest.MonkeyPatch):
    """BLAS's cells emptied and the reference fallback made to fail: only native code may
    compute a product."""
    saved = {r: c.value for r, c in blas_source._CELLS.items()}

    def reference_ran(*args: object) -> None:
        raise AssertionError("the reference computed the product")

    monkeypatch.setattr(blas, "run_node", reference_ran)
    for c in blas_source._CELLS.values():
        c.value = 0
    try:
        yield
    finally:
        for r, c in blas_source._CELLS.items():
            c.value = saved[r]


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_products_do_not_call_blas(dtype: str, no_blas: None) -> None:
    A, B = T.matrix("A", dtype=dtype), T.matrix("B", dtype=dtype)
    fn = graphc.function([A, B], T.dot(A, B), mode=NATIVE)
    assert small_gemm.ready(dtype, wait=True)
    rng = np.random.default_rng(10)
    for m, k, n in [(256, 512, 10), (256, 10, 512), (16, 16, 16), (5, 3, 1)]:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        _check(fn(a, np.asfortranarray(b)), a @ b, dtype, k)
    big = rng.standard_normal((64, 64)).astype(dtype)  # no small dimension: BLAS's (empty) cell
    with pytest.raises(AssertionError, match="reference computed"):
        fn(big, big)


def test_default_limits(no_blas: None) -> None:
    """At the default limits a W3-sized skinny product runs natively, a tiny one calls BLAS."""
    small_gemm.set_limits()
    A, B = T.fmatrix("A"), T.fmatrix("B")
    fn = graphc.function([A, B], T.dot(A, B), mode=NATIVE)
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((256, 512)).astype("float32"), rng.standard_normal((512, 10)).astype("float32")
    _check(fn(a, b), a @ b, "float32", 512)
    _check(fn(a[:, :10].copy(), b.T), a[:, :10] @ b.T, "float32", 10)
    with pytest.raises(AssertionError, match="reference computed"):
        fn(a[:16, :10], b[:10])


def test_disabled_cell_means_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the small function's cell empty the kernels call BLAS (same results)."""
    A, B = T.fmatrix("A"), T.fmatrix("B")
    fn = graphc.function([A, B], T.dot(A, B), mode=NATIVE)
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((50, 8)).astype("float32"), rng.standard_normal((8, 3)).astype("float32")
    want = fn(a, b).copy()
    small_gemm.switch("float32", False)
    try:
        assert not small_gemm._CELLS["float32"].value
        for _ in range(3):  # the per-node path, recording a plan, the plan
            np.testing.assert_allclose(fn(a, b), want, rtol=1e-5, atol=1e-5)
        assert not small_gemm._CELLS["float32"].value
    finally:
        small_gemm.switch("float32", True)
    assert small_gemm._CELLS["float32"].value
    np.testing.assert_allclose(fn(a, b), want, rtol=1e-5, atol=1e-5)


def _at_page_end(a: np.ndarray, keep: list) -> np.ndarray:
    """A copy of ``a`` (C order) whose last byte is just before an inaccessible page: a
    read past it faults."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    size = a.nbytes
    pages = (size + page - 1) // page + 1
    mem = mmap.mmap(-1, pages * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + (pages - 1) * page, page, 0) == 0  # PROT_NONE
    keep.append(mem)
    out = np.frombuffer(mem, a.dtype, count=a.size, offset=(pages - 1) * page - size).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_reads_past_the_operands(fns: dict, dtype: str) -> None:
    """Operands ending at an inaccessible page (row-major and transposed views, sizes that
    are no multiple of the vector width): any read past their end would crash."""
    fn, ref = fns[dtype]
    rng = np.random.default_rng(13)
    keep: list = []
    for m, k, n in [(37, 517, 10), (41, 7, 333), (300, 129, 3), (5, 1000, 1), (13, 13, 13)]:
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        c, v = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal(n).astype(dtype)
        s = np.asarray(0.5, dtype)
        for ga, gb in [(_at_page_end(a, keep), _at_page_end(b, keep)),
                       (_at_page_end(a.T.copy(), keep).T, _at_page_end(b.T.copy(), keep).T)]:
            for got, want in zip(fn(ga, gb, c, v, s), ref(a, b, c, v, s)):
                _check(got, want, dtype, k)


def test_first_product_of_a_process_waits_for_the_native_code() -> None:
    """Which path a product takes never depends on how fast the background compile was: in
    a new process the first product already finds the cell filled, and its result is
    bitwise the one every later call gives."""
    import subprocess
    import sys

    script = (
        "import numpy as np, graphc, graphc.tensor as T\n"
        "from graphc.backend.llvm import small_gemm\n"
        "A, B = T.fmatrix('A'), T.fmatrix('B')\n"
        "fn = graphc.function([A, B], T.dot(A, B))\n"
        "rng = np.random.default_rng(0)\n"
        "a = rng.standard_normal((256, 512)).astype('float32')\n"
        "b = rng.standard_normal((512, 10)).astype('float32')\n"
        "first = fn(a, b).copy()\n"
        "assert small_gemm._CELLS['float32'].value\n"
        "assert all(np.array_equal(fn(a, b), first) for _ in range(5))\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "GRAPHC_SMALL_GEMM"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
