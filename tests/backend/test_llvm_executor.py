"""The LLVM executor: fused nodes, fallbacks, DEBUG mode, and bad input that must never crash."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm.executor import DebugModeError, LLVMProgram
from graphc.backend.reference import NodeRuntimeError
from graphc.compile.mode import Mode
from graphc.graph.fgraph import FunctionGraph
from graphc.ops.elemwise import Elemwise, ScalarOp

NATIVE = Mode("llvm", "fast_run")
NOFUSE = Mode("llvm", "fast_run", excluding=("fusion",))


def test_fused_graph_runs_as_one_kernel() -> None:
    x, y, z = T.fmatrix("x"), T.fmatrix("y"), T.fmatrix("z")
    out = T.exp(x) * y + T.tanh(z)
    fn = graphc.function([x, y, z], out, mode=NATIVE)
    ref = graphc.function([x, y, z], out, mode="PY")
    prog = fn._program
    assert isinstance(prog, LLVMProgram)
    assert len(prog.native_nodes) == 1 and not prog.fallback_nodes
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((37, 19)).astype("float32") for _ in range(3))
    np.testing.assert_allclose(fn(a, b, c), ref(a, b, c), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn(a.T.copy().T, b[:, :1], c[:1]), ref(a, b[:, :1], c[:1]), rtol=1e-5,
                               atol=1e-6)


def test_fused_with_reduction_and_extra_outputs() -> None:
    x, y = T.dmatrix("x"), T.dmatrix("y")
    t = T.exp(x) * y
    outs = [(t + 1).sum(), t, T.sqrt(abs(t)) - x]
    fn = graphc.function([x, y], outs, mode=NATIVE)
    ref = graphc.function([x, y], outs, mode="PY")
    rng = np.random.default_rng(1)
    for sa, sb in [((4, 5), (4, 5)), ((4, 1), (4, 5)), ((4, 5), (1, 5))]:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        for g, w in zip(fn(a, b), ref(a, b)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_unsupported_ops_fall_back_to_reference() -> None:
    x = T.fmatrix("x")
    out = T.dot(x, x.T) + x.sum()
    fn = graphc.function([x], out, mode=NATIVE)
    a = np.arange(12, dtype="float32").reshape(3, 4)
    np.testing.assert_allclose(fn(a), a @ a.T + a.sum(), rtol=1e-6)
    assert fn._program.fallback_nodes


def test_lazy_ifelse_graph() -> None:
    x = T.dvector("x")
    c = T.lscalar("c")
    out = graphc.ifelse(c > 0, T.exp(x) + 1, T.log(x) * 2)
    fn = graphc.function([c, x], out, mode=NATIVE)
    v = np.array([0.5, 2.0])
    np.testing.assert_allclose(fn(1, v), np.exp(v) + 1)
    np.testing.assert_allclose(fn(0, v), np.log(v) * 2)


def test_shape_mismatch_at_run_time_names_op_and_user_line() -> None:
    x, y = T.fvector("x"), T.fvector("y")
    fn = graphc.function([x, y], x * y, mode=NOFUSE)
    with pytest.raises(NodeRuntimeError, match=r"(?s)mul.*cannot be broadcast.*test_llvm_executor\.py"):
        fn(np.ones(3, "float32"), np.ones(4, "float32"))


def test_odd_arrays_are_handled_not_crashed() -> None:
    x, y = T.dvector("x"), T.dvector("y")
    out = T.exp(x) + y
    fg = FunctionGraph([x, y], [out])
    prog = LLVMProgram(fg)
    want = np.exp(np.arange(5.0)) + 1
    big_endian = np.arange(5.0).astype(">f8")
    raw = np.zeros(5 * 8 + 1, dtype="uint8")
    unaligned = raw[1:].view("float64")
    unaligned[:] = np.arange(5.0)
    assert not unaligned.flags.aligned
    for a in [big_endian, unaligned, [0.0, 1.0, 2.0, 3.0, 4.0], np.repeat(np.arange(5.0), 2)[::2]]:
        (got,) = prog([np.asarray(a)[:5] if not isinstance(a, list) else a, np.ones(5)])
        np.testing.assert_allclose(got, want[: len(got)])
    with pytest.raises(ValueError):
        prog([np.ones((2, 2)), np.ones(5)])  # wrong rank
    with pytest.raises(ValueError):
        prog([np.ones(3), np.ones(5)])  # incompatible shapes
    (empty,) = prog([np.ones(0), np.ones(1)])
    assert empty.shape == (0,)


def test_non_native_dtype_input_is_converted_to_the_declared_one() -> None:
    x = T.fvector("x")
    prog = LLVMProgram(FunctionGraph([x], [T.exp(x)]))
    (got,) = prog([np.arange(3, dtype="float64")])  # would be read as float32 otherwise
    np.testing.assert_allclose(got, np.exp(np.arange(3.0)), rtol=1e-6)
    assert got.dtype == np.float32


def test_debug_mode_catches_a_wrong_kernel() -> None:
    # A scalar op whose name the backend lowers as exp, but whose reference is sin.
    liar = Elemwise(ScalarOp("exp", np.sin, 1))
    x = T.dvector("x")
    out = liar(x)  # the line DEBUG mode must point at
    fn = graphc.function([x], out, mode="DEBUG")
    with pytest.raises(DebugModeError, match=r"(?s)exp.*disagrees.*test_llvm_executor\.py:\d+"):
        fn(np.array([0.5, 1.0]))
    ok = graphc.function([x], T.exp(x) * 2 + 1, mode="DEBUG")
    np.testing.assert_allclose(ok(np.array([0.5, 1.0])), np.exp([0.5, 1.0]) * 2 + 1)


def test_introspection() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.tanh(x) * 2, mode=NATIVE)
    text = fn._program.llvm_ir()
    assert "define" in text and "gck_" in text
    assert "ret" in fn._program.asm()


def test_kernels_are_cached_across_functions() -> None:
    x = T.dmatrix("x")
    graphc.function([x], T.log1p(x) * 3, mode=NATIVE)
    again = graphc.function([x], T.log1p(x) * 3, mode=NATIVE)
    assert again._program.native_nodes
    assert all(m.addresses for m in again._program.modules)


def test_reused_output_buffers_never_overwrite_live_results() -> None:
    x = T.dvector("x")
    fn = graphc.function([x], T.exp(x) * 2, mode=NATIVE)
    a = fn(np.zeros(4))
    view = fn(np.ones(4))[1:]
    kept = [fn(np.full(4, float(k))) for k in range(3)]
    for k in range(5):  # results dropped at once: their buffers come back
        fn(np.full(4, 9.0 + k))
    np.testing.assert_allclose(a, 2.0)
    np.testing.assert_allclose(view, 2 * np.e)
    for k, r in enumerate(kept):
        np.testing.assert_allclose(r, 2 * np.exp(k))
    assert len({id(r) for r in kept} | {id(a)}) == 4


def test_large_contiguous_kernels_split_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphc.backend.llvm import executor

    monkeypatch.setenv("GRAPHC_THREADS", "3")
    monkeypatch.setattr(executor, "PARALLEL_MIN_ELEMENTS", 1000)
    monkeypatch.setattr(executor, "_pool", None)
    x, y = T.fvector("x"), T.fvector("y")
    fn = graphc.function([x, y], T.tanh(x) * y - 1, mode=NATIVE)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(100_003).astype("float32"), rng.standard_normal(100_003).astype("float32")
    np.testing.assert_allclose(fn(a, b), np.tanh(a) * b - 1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn(a[::2], b[::2]), np.tanh(a[::2]) * b[::2] - 1, rtol=1e-5, atol=1e-6)


def test_default_modes_use_the_native_backend() -> None:
    x = T.fvector("x")
    assert isinstance(graphc.function([x], x * 2)._program, LLVMProgram)
    assert isinstance(graphc.function([x], x * 2, mode="FAST_COMPILE")._program, LLVMProgram)
    assert isinstance(graphc.function([x], x * 2, mode="DEBUG")._program, LLVMProgram)
    assert not isinstance(graphc.function([x], x * 2, mode="PY")._program, LLVMProgram)


def test_kernel_writes_strided_outputs() -> None:
    """The executor always allocates C-contiguous outputs; the kernels also handle others."""
    from graphc.backend.llvm.executor import WHOLE, _cfunc, _kernels
    from graphc.backend.llvm.expr import dag_for_node
    from graphc.backend.llvm.kernel import kernel_name

    x, y = T.dmatrix("x"), T.bmatrix("y")
    prog = LLVMProgram(FunctionGraph([x, y], [x * y]), opt=3)
    (node,) = prog.native_nodes
    addr, _ = _kernels[f"{kernel_name(dag_for_node(node)[0], 2)}@O3"]
    kernel = _cfunc(addr, 3)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((300, 7))
    c = rng.integers(-5, 5, (300, 1)).astype("int8")
    for out in [np.empty((7, 300)).T, np.empty((600, 14))[::2, ::2], np.empty((300, 7))]:
        assert kernel(0, WHOLE, a, c, out) == 0
        np.testing.assert_allclose(out, a * c)


def test_split_kernels_work_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import warnings

    from graphc.backend.llvm import executor

    monkeypatch.setenv("GRAPHC_THREADS", "2")
    monkeypatch.setattr(executor, "PARALLEL_MIN_ELEMENTS", 1000)
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) + 1, mode=NATIVE)
    a = np.linspace(-3, 3, 50_000, dtype="float32")
    fn(a)  # the parent's pool exists now
    with warnings.catch_warnings():  # Python 3.12+ warns about forking with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: must compute, not hang on the parent's (absent) threads
        ok = np.allclose(fn(a), np.exp(a) + 1, rtol=1e-5)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
