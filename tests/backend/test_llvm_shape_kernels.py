"""Native Join/Stack/Alloc/Eye/ARange (graphc.backend.llvm.shape_kernels) and the tensordot
rewrite, against mode='PY' and NumPy: dtypes, axes, empty and non-contiguous inputs, wrong
inputs raising what the reference raises, and plans for graphs holding these nodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import entry, plan
from graphc.compile.mode import Mode
from graphc.gradient import verify_grad
from graphc.ops.linalg import Dot, TensorDot
from graphc.ops.shape import Alloc, ARange, Eye, Join, Stack

NATIVE = Mode("llvm", "fast_run")
DTYPES = ["float32", "float64", "int32", "int64", "bool"]


def _values(rng: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype[0] == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(-50, 50, shape).astype(dtype)


def _native_ops(fn: Any) -> list[type]:
    return [type(n.op) for n in fn._program.native_nodes]


def _python_ops(fn: Any) -> list[type]:
    native = set(fn._program.native_nodes)
    return [type(n.op) for n in fn.fgraph.toposort() if n not in native]


def _same(got: Any, want: Any) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    np.testing.assert_array_equal(got, want)


def _both(inputs: list, outputs: Any) -> tuple[Any, Any]:
    return graphc.function(inputs, outputs, mode=NATIVE), graphc.function(inputs, outputs, mode="PY")


def _layouts(a: np.ndarray) -> list[np.ndarray]:
    """``a`` as it is, reversed along axis 0, Fortran-ordered, and a strided slice of a bigger array."""
    out = [a, np.ascontiguousarray(a[::-1])[::-1]]
    if a.ndim >= 2:
        out.append(np.asfortranarray(a))
    if a.ndim >= 1:
        big = np.repeat(a, 2, axis=-1)
        out.append(big[..., ::2])
    return out


# -- Join ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,axis", [
    ([(3,), (5,)], 0), ([(0,), (4,), (0,)], 0), ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1),
    ([(2, 3), (2, 5)], -1), ([(2, 3, 4), (2, 1, 4)], 1), ([(2, 3, 4), (2, 3, 2), (2, 3, 1)], -1),
    ([(1, 2, 3, 2), (2, 2, 3, 2)], -4), ([(0, 3), (0, 3)], 1), ([(3, 2)], 0),
])
def test_join(dtype: str, shapes: list, axis: int) -> None:
    rng = np.random.default_rng(len(shapes) * 7 + axis)
    xs = [T.tensor(dtype, shape=(None,) * len(shapes[0]), name=f"x{k}") for k in range(len(shapes))]
    out = T.concatenate(xs, axis=axis) if len(xs) > 1 else Join(axis % len(shapes[0]))(*xs)
    fn, ref = _both(xs, out)
    assert Join in _native_ops(fn)
    vals = [_values(rng, s, dtype) for s in shapes]
    want = np.concatenate(vals, axis=axis)
    for k in range(len(_layouts(vals[0]))):
        args = [_layouts(v)[k] for v in vals]
        _same(fn(*args), want)
        _same(ref(*args), want)


def test_join_large_and_static_shapes() -> None:
    x, y = T.tensor("float32", shape=(None, 64)), T.tensor("float32", shape=(7, 64))
    out = T.concatenate([x, y, x], axis=0)
    assert out.type.shape == (None, 64)
    fn = graphc.function([x, y], out, mode=NATIVE)
    a, b = np.ones((300, 64), "float32"), np.full((7, 64), 2, "float32")
    _same(fn(a, b), np.concatenate([a, b, a]))


@pytest.mark.parametrize("shapes,axis", [([(2, 3), (3, 3)], 1), ([(2, 3, 1), (2, 4, 2)], 0)])
def test_join_wrong_shapes_raise_as_reference(shapes: list, axis: int) -> None:
    xs = [T.tensor("float64", shape=(None,) * len(shapes[0])) for _ in shapes]
    fn, ref = _both(xs, T.concatenate(xs, axis=axis))
    vals = [np.zeros(s) for s in shapes]
    with pytest.raises(Exception) as want:
        ref(*vals)
    with pytest.raises(type(want.value)):
        fn(*vals)


# -- Stack ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4,), (0,), (2, 3), (3, 0), (2, 3, 4)])
def test_stack(dtype: str, shape: tuple) -> None:
    rng = np.random.default_rng(len(shape))
    xs = [T.tensor(dtype, shape=(None,) * len(shape)) for _ in range(3)]
    for axis in range(-len(shape) - 1, len(shape) + 1):
        fn, ref = _both(xs, T.stack(xs, axis=axis))
        assert Stack in _native_ops(fn)
        vals = [_values(rng, shape, dtype) for _ in xs]
        want = np.stack(vals, axis=axis)
        for k in range(len(_layouts(vals[0]))):
            args = [_layouts(v)[k] for v in vals]
            _same(fn(*args), want)
            _same(ref(*args), want)


def test_stack_wrong_shapes_and_scalars() -> None:
    x, y = T.fmatrix(), T.fmatrix()
    fn, ref = _both([x, y], T.stack([x, y]))
    a, b = np.zeros((2, 3), "float32"), np.zeros((3, 2), "float32")
    with pytest.raises(Exception) as want:
        ref(a, b)
    with pytest.raises(type(want.value)):
        fn(a, b)
    # Scalars stack natively, but a shape vector stays on the reference: plans compute it
    # once, and a reshape reading it stays a view.
    s, t = T.lscalar(), T.lscalar()
    fn = graphc.function([s, t], T.stack([s, t, s]), mode=NATIVE)
    assert Stack in _native_ops(fn)
    _same(fn(np.int64(3), np.int64(4)), np.array([3, 4, 3]))
    u, v = T.dscalar(), T.dscalar()
    fn = graphc.function([u, v], T.stack([u * 2, v]), mode=NATIVE)
    assert Stack in _native_ops(fn)
    _same(fn(np.float64(3), np.float64(4)), np.array([6.0, 4.0]))
    x = T.tensor("float32", shape=(None, None, 4))
    fn = graphc.function([x], 2 * x.reshape((x.shape[0], -1)), mode=NATIVE)
    assert Stack in _python_ops(fn)
    a = np.ones((3, 2, 4), "float32")
    for _ in range(3):
        _same(fn(a), 2 * a.reshape(3, 8))
    if entry.available() and plan.interpreter() is not None:
        assert fn._plan is not None, fn._plan_why


# -- Alloc ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("vshape,target", [
    ((), (3, 4)), ((), ()), ((), (0, 5)), ((4,), (3, 4)), ((1,), (2, 5)), ((3, 1), (2, 3, 5)),
    ((1, 5), (4, 5)), ((2, 1, 3), (2, 4, 3)), ((2, 3), (2, 3)), ((0,), (3, 0)),
])
def test_alloc(dtype: str, vshape: tuple, target: tuple) -> None:
    rng = np.random.default_rng(len(target))
    v = T.tensor(dtype, shape=(None,) * len(vshape))
    dims = [T.lscalar(f"d{k}") for k in range(len(target))]
    fn, ref = _both([v, *dims], T.alloc(v, *dims))
    assert Alloc in _native_ops(fn)
    val = _values(rng, vshape, dtype)
    want = np.broadcast_to(val, target)
    for layout in _layouts(val) if val.ndim else [val]:
        args = [layout, *(np.int64(d) for d in target)]
        _same(fn(*args), want)
        _same(ref(*args), want)


def test_zeros_ones_and_static_shapes() -> None:
    x = T.tensor("float64", shape=(None, 3))
    outs = [T.zeros((x.shape[0], 3)), T.ones((2, x.shape[0]), dtype="int32"), T.alloc(x.sum(), 4)]
    fn, ref = _both([x], outs)
    assert _native_ops(fn).count(Alloc) == 3
    a = np.arange(6.0).reshape(2, 3)
    wants = [np.zeros((2, 3), "float32"), np.ones((2, 2), "int32"), np.full(4, 15.0)]
    for g, r, w in zip(fn(a), ref(a), wants):
        _same(g, w)
        _same(r, w)


@pytest.mark.parametrize("vshape,target", [((), (2, -1)), ((3,), (2, 4)), ((2, 3), (3, 3)), ((2,), (0,))])
def test_alloc_wrong_inputs_raise_as_reference(vshape: tuple, target: tuple) -> None:
    v = T.tensor("float32", shape=(None,) * len(vshape))
    dims = [T.lscalar() for _ in target]
    fn, ref = _both([v, *dims], T.alloc(v, *dims))
    args = [np.zeros(vshape, "float32"), *(np.int64(d) for d in target)]
    with pytest.raises(Exception) as want:
        ref(*args)
    with pytest.raises(type(want.value)):
        fn(*args)


# -- Eye -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_eye(dtype: str) -> None:
    n, m, k = T.lscalar(), T.lscalar(), T.lscalar()
    fn, ref = _both([n, m, k], T.eye(n, m, k, dtype=dtype))
    assert Eye in _native_ops(fn)
    for nn, mm in [(3, 3), (2, 5), (5, 2), (0, 3), (3, 0), (1, 1)]:
        for kk in (0, 1, -1, 2, -4, 7, -7, 2**62, -(2**63)):
            args = (np.int64(nn), np.int64(mm), np.int64(kk))
            want = np.eye(nn, mm, kk, dtype=dtype) if abs(kk) < 2**40 else np.zeros((nn, mm), dtype)
            _same(fn(*args), want)
            _same(ref(*args), want)
    with pytest.raises(Exception) as err:
        ref(np.int64(-1), np.int64(2), np.int64(0))
    with pytest.raises(type(err.value)):
        fn(np.int64(-1), np.int64(2), np.int64(0))


# -- ARange --------------------------------------------------------------------------------
@pytest.mark.parametrize("in_dt,dtype", [
    ("int64", "int64"), ("int32", "int64"), ("int64", "int32"), ("int64", "uint8"), ("int16", "int8"),
    ("int64", "float32"), ("int64", "float64"), ("uint64", "int64"), ("float32", "float32"),
    ("float64", "float64"), ("float64", "float32"),
])
def test_arange(in_dt: str, dtype: str) -> None:
    rng = np.random.default_rng(5)
    a, z, d = (T.tensor(in_dt, shape=()) for _ in range(3))
    fn, ref = _both([a, z, d], ARange(dtype)(a, z, d))
    assert ARange in _native_ops(fn)
    cases: list[tuple] = [(0, 10, 1), (10, 0, -3), (3, 3, 1), (5, 0, 1), (0, 100, 7), (1, 2, 5)]
    for _ in range(40):
        if in_dt[0] == "f":
            cases.append(tuple(rng.standard_normal() * 10.0 ** rng.integers(-2, 3) for _ in range(3)))
        else:
            info = np.iinfo(in_dt)
            lo, hi = max(info.min, -300), min(info.max, 300)
            cases.append(tuple(int(rng.integers(lo, hi + 1)) for _ in range(3)))
    if in_dt[0] == "f":
        cases += [(0.0, 1.0, 0.1), (0.0, 1.0, 0.0), (1.0, float("nan"), 1.0), (0.0, float("inf"), 1.0),
                  (-1.0, 1.0, 1e-3)]
    elif in_dt == "int64":
        cases += [(2**40, 2**40 + 9, 2), (0, 5, 0), (-(2**62), 2**62, 2**61), (200, 300, 30)]
    for case in cases:
        if in_dt[0] == "u" and min(case) < 0:
            continue
        args = [np.asarray(v, in_dt) for v in case]
        try:
            want = ref(*args)
        except Exception as exc:
            with pytest.raises(type(exc)):
                fn(*args)
            continue
        _same(fn(*args), want)
        _same(want, np.arange(*(v.item() for v in args), dtype=dtype))


@pytest.mark.skipif(not entry.available() or plan.interpreter() is None, reason="no plan interpreter")
def test_arange_of_a_shape_in_a_gradient_graph() -> None:
    x, y = T.fmatrix("x"), T.ivector("y")
    w = graphc.shared(np.ones((4, 3), "float32"), name="w")
    p = T.dot(x, w)
    loss = (p[T.arange(y.shape[0]), y] ** 2).mean()
    fn = graphc.function([x, y], loss, updates=[(w, w - 0.1 * graphc.grad(loss, w))], mode=NATIVE)
    assert ARange in _native_ops(fn) and Alloc not in _python_ops(fn)
    w_ref = graphc.shared(np.ones((4, 3), "float32"))
    p = T.dot(x, w_ref)
    loss_ref = (p[T.arange(y.shape[0]), y] ** 2).mean()
    ref = graphc.function([x, y], loss_ref, updates=[(w_ref, w_ref - 0.1 * graphc.grad(loss_ref, w_ref))],
                          mode="PY")
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((5, 4)).astype("float32"), rng.integers(0, 3, 5).astype("int32")
    for _ in range(4):
        np.testing.assert_allclose(fn(xs, ys), ref(xs, ys), rtol=1e-5)
    np.testing.assert_allclose(w.get_value(), w_ref.get_value(), rtol=1e-5)
    assert fn._plan is not None, fn._plan_why  # the index and its gradient run natively too


# -- plans -----------------------------------------------------------------------------------
needs_plans = pytest.mark.skipif(not entry.available() or plan.interpreter() is None,
                                 reason="no plan interpreter on this interpreter")


@needs_plans
def test_graph_with_join_alloc_stack_gets_a_plan() -> None:
    x = T.fmatrix("x")
    y = T.concatenate([x, 2 * x], axis=1)
    z = T.alloc(x.sum(), x.shape[0], 3) + y[:, :3]
    s = T.stack([x, x + 1], axis=-1)
    w = graphc.shared(np.zeros((4, 10), "float32"), name="w")
    fn = graphc.function([x], [y, z, s], updates=[(w, w + T.zeros((4, 10)) + y[:4].sum())], mode=NATIVE)
    ref = graphc.function([x], [y, z, s], mode="PY")
    assert {Join, Alloc, Stack} <= set(_native_ops(fn)) and not {Join, Alloc, Stack} & set(_python_ops(fn))
    a = np.arange(20, dtype="float32").reshape(4, 5)
    for _ in range(4):
        for g, r in zip(fn(a), ref(a)):
            _same(g, r)
    assert fn._plan is not None, fn._plan_why
    expected = 4 * np.concatenate([a, 2 * a], axis=1)[:4].sum()
    np.testing.assert_allclose(w.get_value(), np.full((4, 10), expected), rtol=1e-5)


@needs_plans
def test_plan_follows_sizes_given_by_values() -> None:
    """A plan replays at the recorded shapes: a call whose scalars ask for other sizes must
    not reuse them (the kernels refuse, the per-node path runs)."""
    n, k = T.lscalar("n"), T.lscalar("k")
    v = T.fvector("v")
    outs = [T.alloc(v, n, 3), T.arange(1, n, 2), T.eye(n, 4, k)]
    fn, ref = _both([v, n, k], outs)
    val = np.arange(3, dtype="float32")
    for nn, kk in [(4, 0), (4, 0), (4, 0), (6, 1), (4, 2), (2, -1), (4, 0), (0, 0)]:
        args = (val, np.int64(nn), np.int64(kk))
        for g, r in zip(fn(*args), ref(*args)):
            _same(g, r)
    assert fn._plan is not None, fn._plan_why


@needs_plans
def test_training_step_with_value_given_sizes_keeps_updates_right() -> None:
    def make(mode: object) -> tuple:
        w = graphc.shared(np.ones((3, 4), "float32"), name="w")
        x, n = T.fmatrix("x"), T.lscalar("n")
        h = T.concatenate([T.dot(x, w), T.alloc(np.float32(0.5), n, 4)], axis=0)
        loss = (h ** 2).sum() + T.arange(n, dtype="float32").sum()
        fn = graphc.function([x, n], loss, updates=[(w, w - 0.01 * graphc.grad(loss, w))], mode=mode)
        return fn, w

    (fn, w), (ref, w_ref) = make(NATIVE), make("PY")
    xs = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    for nn in [2, 2, 2, 2, 3, 2, 0, 5, 5, 5, 2]:
        np.testing.assert_allclose(fn(xs, np.int64(nn)), ref(xs, np.int64(nn)), rtol=1e-5)
        np.testing.assert_allclose(w.get_value(), w_ref.get_value(), rtol=1e-5)
    assert fn._plan is not None, fn._plan_why


# -- TensorDot rewrite -----------------------------------------------------------------------
TD_CASES = [
    ((2, 3, 4), (4, 5), 1), ((2, 3, 4), (3, 4, 5), 2), ((2, 3, 4), (4, 3, 5), [[1, 2], [1, 0]]),
    ((4, 3, 2), (3, 4, 5), [[0, 1], [1, 0]]), ((3,), (3, 2), 1), ((2, 3), (4,), 0), ((2, 3, 4), (2, 3, 4), 3),
    ((2, 0, 4), (4, 3), 1), ((5, 2, 3), (2, 5), [[-3, 1], [1, 0]]),
]


@pytest.mark.parametrize("sa,sb,axes", TD_CASES)
@pytest.mark.parametrize("static", [True, False])
def test_tensordot_becomes_dot(sa: tuple, sb: tuple, axes: Any, static: bool) -> None:
    rng = np.random.default_rng(len(sa) + len(sb))
    a = T.tensor("float32", shape=sa if static else (None,) * len(sa))
    b = T.tensor("float32", shape=sb if static else (None,) * len(sb))
    out = T.tensordot(a, b, axes)
    fn, ref = _both([a, b], out)
    n_pairs = axes if isinstance(axes, int) else len(axes[0])
    if static or n_pairs <= 1:
        assert TensorDot not in _python_ops(fn) and Dot in _native_ops(fn)
    x, y = rng.standard_normal(sa).astype("float32"), rng.standard_normal(sb).astype("float32")
    want = np.tensordot(x, y, axes)
    for got in (fn(x, y), ref(x, y)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_tensordot_mismatch_still_raises() -> None:
    a, b = T.dtensor3(), T.dmatrix()
    fn, ref = _both([a, b], T.tensordot(a, b, [[1, 2], [1, 0]]))  # two unknown pairs: kept
    x, y = np.zeros((2, 3, 2)), np.zeros((3, 2))  # products agree (6), sizes do not
    with pytest.raises(Exception) as want:
        ref(x, y)
    with pytest.raises(type(want.value)):
        fn(x, y)
    a = T.dtensor3()
    fn = graphc.function([a, b], T.tensordot(a, b, 1), mode=NATIVE)
    with pytest.raises(ValueError):
        fn(np.zeros((2, 3, 4)), np.zeros((5, 2)))


@needs_plans
def test_time_distributed_dense_step_gets_a_plan() -> None:
    def make(mode: object) -> tuple:
        w = graphc.shared(np.linspace(-1, 1, 32 * 16).reshape(32, 16).astype("float32"), name="w")
        x = T.tensor("float32", shape=(None, 10, 32), name="x")
        loss = (T.tanh(T.tensordot(x, w, 1)) ** 2).mean()
        fn = graphc.function([x], loss, updates=[(w, w - 0.1 * graphc.grad(loss, w))], mode=mode)
        return fn, w

    (fn, w), (ref, w_ref) = make(NATIVE), make("PY")
    assert not [n for n in fn.fgraph.toposort() if isinstance(n.op, TensorDot)]
    rng = np.random.default_rng(4)
    for n in (8, 8, 8, 8, 3, 3, 3):
        xs = rng.standard_normal((n, 10, 32)).astype("float32")
        np.testing.assert_allclose(fn(xs), ref(xs), rtol=1e-5)
        np.testing.assert_allclose(w.get_value(), w_ref.get_value(), rtol=1e-4, atol=1e-6)
    assert fn._plan is not None, fn._plan_why


GRAD_FNS: list[tuple[Callable, list[tuple]]] = [
    (lambda a, b: T.tensordot(a, b, 1), [(2, 3, 4), (4, 5)]),
    (lambda a, b: T.tensordot(a, b, [[1, 2], [1, 0]]), [(2, 3, 4), (4, 3, 5)]),
    (lambda a, b: T.tensordot(a, b, [[0, 1], [1, 0]]), [(4, 3, 2), (3, 4, 5)]),
    (lambda a, b: T.tensordot(a, b, 0), [(2, 3), (4,)]),
    (lambda a, b: T.tensordot(a, b, 1), [(3,), (3, 2)]),
]


@pytest.mark.parametrize("k", range(len(GRAD_FNS)))
def test_tensordot_gradient_after_rewrite(k: int) -> None:
    fn, shapes = GRAD_FNS[k]
    rng = np.random.default_rng(k)
    pts = [rng.standard_normal(s) for s in shapes]
    verify_grad(fn, pts, rng=rng, mode="FAST_RUN")
    verify_grad(fn, pts, rng=rng, mode="PY")
    a, b = (T.tensor("float64", shape=(None,) * len(s)) for s in shapes)
    grads = graphc.grad(fn(a, b).sum(), [a, b])
    g = graphc.function([a, b], grads, mode=NATIVE)
    for got, want in zip(g(*pts), graphc.function([a, b], grads, mode="PY")(*pts)):
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_debug_mode_agrees() -> None:
    x, n = T.dmatrix(), T.lscalar()
    outs = [T.concatenate([x, x], 0), T.stack([x, x], 1), T.alloc(x[0], n, x.shape[1]), T.eye(n, n, 1),
            T.arange(n, dtype="float64")]
    fn = graphc.function([x, n], outs, mode="DEBUG")
    a = np.arange(6.0).reshape(2, 3)
    for g, w in zip(fn(a, np.int64(3)), graphc.function([x, n], outs, mode="PY")(a, np.int64(3))):
        _same(g, w)


def test_float16_copies_natively_and_kernel_ir() -> None:
    x, n = T.tensor("float16", shape=(None, None)), T.lscalar()
    outs = [T.concatenate([x, x], 0), T.stack([x, x], 2), T.alloc(x[0], n, x.shape[1]),
            T.eye(n, dtype="float16")]
    fn, ref = _both([x, n], outs)
    assert {Join, Stack, Alloc} <= set(_native_ops(fn)) and Eye in _python_ops(fn)  # a 1.0 of float16: no
    a = np.random.default_rng(3).random((3, 4)).astype("float16")
    for g, w in zip(fn(a, np.int64(3)), ref(a, np.int64(3))):
        _same(g, w)
    join = next(nd for nd in fn._program.native_nodes if isinstance(nd.op, Join))
    assert "llvm.memcpy" in fn._program.llvm_ir(join)  # contiguous operands: one copy per block
