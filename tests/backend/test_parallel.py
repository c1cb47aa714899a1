"""The native parallel-for (graphc.backend.llvm.parallel): split kernels compute what one
thread computes, statuses propagate, concurrent callers and forked children work."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import executor, parallel, reduce_threads
from graphc.compile.mode import Mode

NATIVE = Mode("llvm", "fast_run")
pytestmark = pytest.mark.skipif(parallel.symbols() is None, reason="no native pool on this platform")
SIZES = [1, 63, 64, 65, 999, 1000, 1001, 4097, 64 * 65 + 1, 100_003]


@pytest.fixture
def split(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Kernels from 1000 elements split over 3 threads; the list counts native splits."""
    monkeypatch.setenv("GRAPHC_THREADS", "3")
    monkeypatch.setattr(executor, "PARALLEL_MIN_ELEMENTS", 1000)
    monkeypatch.setattr(parallel, "ENABLED", True)
    counts: list[int] = []
    orig = parallel.splitter

    def spy(cfunc: object, threads: int) -> object:
        par = orig(cfunc, threads)
        if par is not None:
            counts.append(threads)
        return par

    monkeypatch.setattr(parallel, "splitter", spy)
    return counts


def _kernel(fn: object) -> tuple[object, int]:
    prog = fn._program  # type: ignore[attr-defined]
    (node,) = prog.native_nodes
    nargs = len(node.inputs) + len(node.outputs)
    return executor._cfunc(prog.kernel_addr[node], nargs), nargs


def _single(ins: list, out: object) -> object:
    """The function compiled (and so always run) on one thread."""
    old = os.environ.get("GRAPHC_THREADS")
    os.environ["GRAPHC_THREADS"] = "1"
    try:
        return graphc.function(ins, out, mode=NATIVE)
    finally:
        os.environ["GRAPHC_THREADS"] = old if old is not None else ""
        if old is None:
            del os.environ["GRAPHC_THREADS"]


def _w1() -> tuple[list, object]:
    x, y, z = T.fvector("x"), T.fvector("y"), T.fvector("z")
    return [x, y, z], T.exp(x) * y + T.tanh(z)


@pytest.mark.parametrize("n", SIZES)
def test_split_results_equal_single_thread_and_reference(split: list[int], n: int) -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    ref = graphc.function(ins, out, mode="PY")
    rng = np.random.default_rng(n)
    args = [rng.standard_normal(n).astype("float32") for _ in range(3)]
    got = fn(*args)
    np.testing.assert_array_equal(got, _single(ins, out)(*args))  # each element as by one thread
    np.testing.assert_allclose(got, ref(*args), rtol=1e-5, atol=1e-6)
    assert len(split) == (1 if n >= 1000 else 0)


def test_integer_and_float64_kernels_split(split: list[int]) -> None:
    a, b = T.lvector("a"), T.lvector("b")
    d = T.dvector("d")
    outs = [a * 3 - b, T.maximum(a, b), T.sqrt(abs(d)) + 1]
    fn = graphc.function([a, b, d], outs, mode=NATIVE)
    ref = graphc.function([a, b, d], outs, mode="PY")
    rng = np.random.default_rng(3)
    n = 50_001
    args = [rng.integers(-1000, 1000, n), rng.integers(-1000, 1000, n), rng.standard_normal(n)]
    for got, want in zip(fn(*args), ref(*args)):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert split


@pytest.mark.parametrize("n_in", [8, 11, 13])
def test_kernels_of_many_arrays_split(split: list[int], n_in: int) -> None:
    """Above 8 arrays a kernel is called with its arity bucket's (the extra arguments repeat
    its first array)."""
    xs = [T.fvector(f"x{k}") for k in range(n_in)]
    out = T.exp(xs[0])
    for k, x in enumerate(xs[1:]):
        out = out + x * (k + 2)
    fn = graphc.function(xs, out, mode=NATIVE)
    ref = graphc.function(xs, out, mode="PY")
    (node,) = fn._program.native_nodes
    found = parallel.kernel_of(executor._cfunc(fn._program.kernel_addr[node], n_in + 1))
    assert found is not None and found[1] == n_in + 1  # the inputs and the output
    rng = np.random.default_rng(n_in)
    args = [rng.standard_normal(20_011).astype("float32") for _ in range(n_in)]
    np.testing.assert_allclose(fn(*args), ref(*args), rtol=1e-5, atol=1e-5)
    assert split


def test_kernels_beyond_the_largest_bucket_use_the_python_pool() -> None:
    proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                             *([ctypes.py_object] * (parallel.MAX_ARRAYS + 1)))
    assert parallel.splitter(proto(1), 2) is None  # (never called)
    assert parallel.kernel_of(proto(1)) == (1, parallel.MAX_ARRAYS + 1)
    assert parallel.kernel_of(lambda *a: 0) is None


@pytest.mark.parametrize("slices", [1, 2, 3, 5, 8, 255, 1000, 0, -1])
def test_splitter_slices_cover_the_range(slices: int) -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, nargs = _kernel(fn)
    par = parallel.splitter(cfunc, 2)
    assert par is not None
    rng = np.random.default_rng(5)
    for n in (0, 1, 127, 128, 129, 64 * 257 + 3, 70_001):
        args = [rng.standard_normal(n).astype("float32") for _ in range(3)]
        got, want = np.full(n, np.nan, "float32"), np.empty(n, "float32")
        assert par(n, slices, *args, got) == 0
        assert cfunc(0, executor.WHOLE, *args, want) == 0
        np.testing.assert_array_equal(got, want)


def test_a_refused_slice_makes_the_call_fall_back(split: list[int]) -> None:
    """Kernels refuse parts of strided runs: the split's status is nonzero, and the gate's
    whole call (or the reference) computes the result."""
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, _ = _kernel(fn)
    rng = np.random.default_rng(6)
    n = 20_000
    args = [rng.standard_normal(2 * n).astype("float32")[::2] for _ in range(3)]
    o = np.empty(n, "float32")
    assert executor._run_split(cfunc, n, [*args, o], 3) != 0
    each = parallel.each(cfunc, 3)
    assert each(3, *args, o, *args, o, *args, o) != 0
    contiguous = [a.copy() for a in args]
    assert each(3, *contiguous, o, *contiguous, o, *contiguous, o) == 0  # (0, 0): nothing to do
    want = np.exp(args[0]) * args[1] + np.tanh(args[2])
    np.testing.assert_allclose(fn(*args), want, rtol=1e-5, atol=1e-6)


def test_entries_check_their_arguments() -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, _ = _kernel(fn)
    par, each = parallel.splitter(cfunc, 2), parallel.each(cfunc, 2)
    a = np.ones(100, "float32")
    for bad in [(), (100,), (100, 2, a, a, a), (100, 2, a, a, a, a, a), (100, 2, a, a, a, [1.0]),
                (100, 2, a, a, a, None), ("100", 2, a, a, a, a)]:
        with pytest.raises(TypeError):
            par(*bad)
    with pytest.raises(TypeError):
        par(-1, 2, a, a, a, a)
    for bad in [(0, a, a, a, a), (256, a, a, a, a), (2, a, a, a, a), (1, a, a, a, 1.0)]:
        with pytest.raises(TypeError):
            each(*bad)
    assert par(100, 2, a, a, a, np.ma.masked_array(a).data) == 0  # a subclass' struct is an ndarray's


def test_many_calls_in_a_row() -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, _ = _kernel(fn)
    par = parallel.splitter(cfunc, 2)
    rng = np.random.default_rng(7)
    args = [rng.standard_normal(4099).astype("float32") for _ in range(3)]
    want = np.empty(4099, "float32")
    cfunc(0, executor.WHOLE, *args, want)
    got = np.empty(4099, "float32")
    for k in range(3000):
        got[:] = np.nan
        assert par(4099, 2 + k % 3, *args, got) == 0
        if k % 100 == 0 or k > 2990:
            np.testing.assert_array_equal(got, want)


def test_calls_from_several_threads_at_once(split: list[int]) -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            for _ in range(60):
                n = int(rng.integers(1000, 40_000))
                a, b, c = (rng.standard_normal(n).astype("float32") for _ in range(3))
                np.testing.assert_allclose(fn(a, b, c), np.exp(a) * b + np.tanh(c), rtol=1e-5, atol=1e-6)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[0]
    assert len(split) >= 200  # (a call recording a plan splits through the Python pool)


def test_a_busy_pool_runs_the_job_on_the_calling_thread() -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, _ = _kernel(fn)
    par = parallel.splitter(cfunc, 2)
    busy = ctypes.c_int32.from_address(parallel._state["pool"] + parallel.P_BUSY)
    a = np.linspace(-2, 2, 10_001, dtype="float32")
    got = np.empty_like(a)
    busy.value = 1
    try:
        assert par(a.size, 2, a, a, a, got) == 0
    finally:
        busy.value = 0
    np.testing.assert_allclose(got, np.exp(a) * a + np.tanh(a), rtol=1e-5, atol=1e-6)


def test_after_a_lost_split_the_next_jobs_run_on_the_calling_thread() -> None:
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, _ = _kernel(fn)
    par = parallel.splitter(cfunc, 2)
    skip = ctypes.c_int64.from_address(parallel._state["pool"] + parallel.P_SKIP)
    a = np.linspace(-2, 2, 50_001, dtype="float32")
    want = np.exp(a) * a + np.tanh(a)
    skip.value = 3
    for left in (2, 1, 0):
        got = np.empty_like(a)
        assert par(a.size, 2, a, a, a, got) == 0
        assert skip.value == left
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert par(a.size, 2, a, a, a, got) == 0  # split again (and back off only if it lost)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_native_symbol_runs_a_kernel_over_slices() -> None:
    """``graphc_parallel_for`` as other native code calls it: kernel, size, slices, arity,
    array pointers."""
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    cfunc, nargs = _kernel(fn)
    addr, n = parallel.kernel_of(cfunc)
    assert n == nargs == 4
    syms = parallel.symbols()
    proto = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                             ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p))
    run = proto(syms[parallel.PARALLEL_FOR])
    a = np.linspace(-3, 3, 77_777, dtype="float32")
    got = np.empty_like(a)
    table = (ctypes.c_void_p * 4)(*(id(v) for v in (a, a, a, got)))
    assert run(addr, a.size, 4, 4, table) == 0
    np.testing.assert_allclose(got, np.exp(a) * a + np.tanh(a), rtol=1e-5, atol=1e-6)
    assert run(addr, a.size, 4, parallel.MAX_ARRAYS + 1, table) == parallel.STATUS_BAD_ARITY
    each = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                            ctypes.POINTER(ctypes.c_void_p))(syms[parallel.PARALLEL_EACH])
    strided = [np.linspace(-1, 1, 2 * k + 2, dtype="float32")[::2] for k in range(3)]
    outs = [np.empty_like(v) for v in strided]
    groups = [(v, v, v, o) for v, o in zip(strided, outs)]
    table = (ctypes.c_void_p * 12)(*(id(v) for g in groups for v in g))
    assert each(addr, 3, 4, table) != 0  # (0, 0) on strided arrays: each slice refuses


def _child_computes(conn: object) -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) + 1, mode=NATIVE)
    a = np.linspace(-3, 3, 50_000, dtype="float32")
    ok = all(np.allclose(fn(a), np.exp(a) + 1, rtol=1e-5) for _ in range(20))
    names = [t.name for t in threading.enumerate()]
    conn.send((ok, any(n.startswith("graphc-parallel") for n in names)))  # type: ignore[attr-defined]


def test_a_forked_child_computes_with_its_own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHC_THREADS", "2")
    monkeypatch.setattr(executor, "PARALLEL_MIN_ELEMENTS", 1000)
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) + 1, mode=NATIVE)
    fn(np.ones(5000, "float32"))  # the parent's pool runs
    assert parallel._state.get("pool") is not None
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        proc = ctx.Process(target=_child_computes, args=(child,))
        proc.start()
    assert parent.poll(120), "the child hung"
    ok, started = parent.recv()
    proc.join(30)
    assert proc.exitcode == 0 and ok and started


def test_graphc_threads_1_runs_one_thread(monkeypatch: pytest.MonkeyPatch, split: list[int]) -> None:
    monkeypatch.setenv("GRAPHC_THREADS", "1")
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    a = np.linspace(-1, 1, 100_000, dtype="float32")
    np.testing.assert_allclose(fn(a, a, a), np.exp(a) * a + np.tanh(a), rtol=1e-5, atol=1e-6)
    assert split == []


def test_native_pool_off_uses_the_python_pool(monkeypatch: pytest.MonkeyPatch, split: list[int]) -> None:
    monkeypatch.setattr(parallel, "ENABLED", False)
    ins, out = _w1()
    fn = graphc.function(ins, out, mode=NATIVE)
    a = np.linspace(-1, 1, 100_000, dtype="float32")
    np.testing.assert_allclose(fn(a, a, a), np.exp(a) * a + np.tanh(a), rtol=1e-5, atol=1e-6)
    assert split == [] and executor._pool is not None


def test_reductions_split_through_the_native_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reduce_threads, "THREAD_MIN_ELEMENTS", 1)
    monkeypatch.setattr(reduce_threads, "THREADS", 3)
    used: list[int] = []
    orig = parallel.each

    def spy(cfunc: object, threads: int) -> object:
        par = orig(cfunc, threads)
        used.append(par is not None)
        return par

    monkeypatch.setattr(parallel, "each", spy)
    m = T.fmatrix("m")
    outs = [m.sum(axis=0), m.max(), T.argmax(m), m.sum(axis=1), T.argmin(m, axis=0), m.mean()]
    fn = graphc.function([m], outs, mode=NATIVE)
    ref = graphc.function([m], outs, mode="PY")
    a = np.random.default_rng(8).standard_normal((301, 77)).astype("float32")
    for got, want in zip(fn(a), ref(a)):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert used and all(used)


def test_process_exit_does_not_hang() -> None:
    code = (
        "import numpy as np, graphc, graphc.tensor as T\n"
        "from graphc.backend.llvm import executor\n"
        "executor.PARALLEL_MIN_ELEMENTS = 1000\n"
        "x = T.fvector()\n"
        "f = graphc.function([x], T.exp(x) + 1)\n"
        "a = np.ones(100_000, 'float32')\n"
        "for _ in range(20): f(a)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, GRAPHC_THREADS="3")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
