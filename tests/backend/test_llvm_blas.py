"""Dot, Gemm and MatMul through BLAS from native code, against the reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import blas_source
from graphc.backend.reference import NodeRuntimeError
from graphc.compile.mode import Mode
from graphc.ops.linalg import Dot, MatMul
from graphc.rewrite.gemm import Gemm

NATIVE = Mode("llvm", "fast_run")
DEBUG = Mode("debug", "fast_run")
pytestmark = pytest.mark.skipif(not blas_source.blas_available(), reason="SciPy's BLAS is not available")

RTOL = {"float32": 2e-5, "float64": 1e-12}


def _native_types(fn: graphc.compile.function.Function) -> set[type]:
    return {type(n.op) for n in fn._program.native_nodes}


def _layouts(a: np.ndarray) -> list[np.ndarray]:
    """The same values as contiguous, transposed-contiguous (Fortran) and strided arrays."""
    out = [a, np.asfortranarray(a)]
    big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    out.append(view)
    if a.ndim:
        out.append(a[::-1][::-1])  # negative strides twice: a positive-stride view
        rev = np.ascontiguousarray(a[::-1])[::-1]  # negative strides: BLAS cannot take it
        out.append(rev)
    return out


def _check(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 4), (17, 33, 9), (64, 1, 7), (1, 40, 1)])
def test_dot_all_rank_combinations(dtype: str, m: int, k: int, n: int) -> None:
    A, B = T.matrix("A", dtype=dtype), T.matrix("B", dtype=dtype)
    u, v = T.vector("u", dtype=dtype), T.vector("v", dtype=dtype)
    outs = [T.dot(A, B), T.dot(A, v), T.dot(u, B), T.dot(u, v)]
    fn = graphc.function([A, B, u, v], outs, mode=NATIVE)
    ref = graphc.function([A, B, u, v], outs, mode="PY")
    assert Dot in _native_types(fn)
    assert [o.type.shape for o in outs] == [(None, None), (None,), (None,), ()]
    rng = np.random.default_rng(m * 100 + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    x, y = rng.standard_normal(k).astype(dtype), rng.standard_normal(k).astype(dtype)
    for la, lb, lx, ly in zip(_layouts(a), _layouts(b), _layouts(x), _layouts(y)):
        for got, want in zip(fn(la, lb, lx, ly), ref(a, b, x, y)):
            _check(got, want, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_transposed_operands_and_empty_dimensions(dtype: str) -> None:
    A, B = T.matrix("A", dtype=dtype), T.matrix("B", dtype=dtype)
    outs = [T.dot(A.T, B), T.dot(A, B.T), T.dot(A.T, B.T.T)]
    fn = graphc.function([A, B], outs, mode=NATIVE)
    ref = graphc.function([A, B], outs, mode="PY")
    rng = np.random.default_rng(3)
    for shape in [(6, 6), (5, 5), (0, 0), (3, 0)]:
        a = rng.standard_normal(shape).astype(dtype)
        for got, want in zip(fn(a, a), ref(a, a)):
            _check(got, want, dtype)
    e = np.zeros((4, 0), dtype)
    got = graphc.function([A, B], T.dot(A, B), mode=NATIVE)(e, np.zeros((0, 3), dtype))
    assert got.shape == (4, 3) and not got.any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_forms(dtype: str) -> None:
    x = T.matrix("x", dtype=dtype)
    W = [T.matrix(f"W{k}", dtype=dtype) for k in range(4)]  # one product per form (no sharing)
    b, c = T.vector("b", dtype=dtype), T.matrix("c", dtype=dtype)
    s = T.scalar("s", dtype=dtype)
    outs = [T.dot(x, W[0]) + b, c - 0.5 * T.dot(x, W[1]), s * T.dot(x, W[2]) + 2 * c,
            c * 3 - T.dot(x, W[3]) * s]
    fn = graphc.function([x, *W, b, c, s], outs, mode=NATIVE)
    ref = graphc.function([x, *W, b, c, s], outs, mode="PY")
    gemms = [n for n in fn.fgraph.toposort() if isinstance(n.op, Gemm)]
    assert len(gemms) == 4 and all(n in fn._program.native_nodes for n in gemms)
    rng = np.random.default_rng(4)
    args = [rng.standard_normal(sh).astype(dtype) for sh in [(7, 5)] + [(5, 3)] * 4 + [(3,), (7, 3), ()]]
    for got, want in zip(fn(*args), ref(*args)):
        _check(got, want, dtype)
    args[1] = np.asfortranarray(args[1])
    args[2] = args[2][::-1][::-1]
    args[0] = args[0][:, ::-1][:, ::-1]
    for got, want in zip(fn(*args), ref(*args)):
        _check(got, want, dtype)


def test_gemm_vector_forms_and_nan_in_addend() -> None:
    A, v, z = T.dmatrix("A"), T.dvector("v"), T.dvector("z")
    outs = [T.dot(A, v) + z, z - T.dot(v, A.T), T.dot(v, v) + z.sum()]
    fn = graphc.function([A, v, z], outs, mode=NATIVE)
    ref = graphc.function([A, v, z], outs, mode="PY")
    rng = np.random.default_rng(5)
    a, x, c = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)
    c[1] = np.nan
    for got, want in zip(fn(a, x, c), ref(a, x, c)):
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa,sb", [((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 1, 4, 6)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (6, 4, 2))])
def test_batched_matmul(dtype: str, sa: tuple, sb: tuple) -> None:
    a = T.tensor(dtype, shape=(None,) * len(sa), name="a")
    b = T.tensor(dtype, shape=(None,) * len(sb), name="b")
    out = T.matmul(a, b)
    fn = graphc.function([a, b], out, mode=NATIVE)
    ref = graphc.function([a, b], out, mode="PY")
    assert MatMul in _native_types(fn)
    rng = np.random.default_rng(len(sa) * 10 + len(sb))
    x, y = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
    _check(fn(x, y), ref(x, y), dtype)
    xt = np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2)  # transposed matrices
    _check(fn(xt, y[..., ::-1][..., ::-1]), ref(x, y), dtype)


def test_integer_and_mixed_products_fall_back() -> None:
    a, b = T.imatrix("a"), T.imatrix("b")
    f, d = T.fmatrix("f"), T.dmatrix("d")
    fn = graphc.function([a, b, f, d], [T.dot(a, b), T.dot(f, d)], mode=NATIVE)
    assert Dot not in _native_types(fn)
    x = np.arange(6, dtype="int32").reshape(2, 3)
    y = np.ones((3, 2), "float32")
    r1, r2 = fn(x, x.T.copy(), y.T.copy(), y.astype("float64"))
    np.testing.assert_array_equal(r1, x @ x.T)
    assert r2.dtype == np.float64


def test_without_blas_numpy_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blas_source, "_present", False)
    A, B = T.fmatrix("A"), T.fmatrix("B")
    fn = graphc.function([A, B], T.dot(A, B) + 1, mode=NATIVE)
    assert not {Dot, Gemm} & _native_types(fn)
    a = np.ones((3, 4), "float32")
    np.testing.assert_allclose(fn(a, a.T), a @ a.T + 1)


def test_bad_shapes_raise_naming_the_op() -> None:
    A, B, v = T.fmatrix("A"), T.fmatrix("B"), T.fvector("v")
    fn = graphc.function([A, B, v], [T.dot(A, B), T.dot(A, v)], mode=NATIVE)
    a = np.ones((3, 4), "float32")
    with pytest.raises(NodeRuntimeError, match="not aligned"):
        fn(a, a, np.ones(4, "float32"))
    with pytest.raises(NodeRuntimeError, match="not aligned"):
        fn(a, a.T, np.ones(5, "float32"))
    m = graphc.function([A, B], T.matmul(A.dimshuffle("x", 0, 1), B), mode=NATIVE)
    with pytest.raises(NodeRuntimeError):
        m(a, a)


def test_symbols_are_named_not_addresses() -> None:
    A, B = T.fmatrix("A"), T.fmatrix("B")
    fn = graphc.function([A, B], T.dot(A, B), mode=NATIVE)
    text = fn._program.llvm_ir(optimized=False)
    assert "graphc_blas_sgemm" in text and "inttoptr" not in text


def test_debug_mode_agrees() -> None:
    x, W, b = T.fmatrix("x"), T.fmatrix("W"), T.fvector("b")
    fn = graphc.function([x, W, b], T.nnet.relu(T.dot(x, W) + b), mode=DEBUG)
    rng = np.random.default_rng(6)
    fn(*(rng.standard_normal(s).astype("float32") for s in [(8, 16), (16, 4), (4,)]))
