"""The low-overhead call path: fast kernel entries, the Function fast path, aliasing rules.

Speed itself is measured by benchmarks (benchmarks/w4_tiny.py), not here: these tests
check that the shortcuts keep every check of the slow path.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import entry, executor
from graphc.compile.mode import Mode

NATIVE = Mode("llvm", "fast_run")


def _fast_entry(fn: graphc.compile.function.Function) -> object:
    prog = fn._program
    node = prog.native_nodes[0]
    name = prog.kernel_of[node]
    addr = next(a for m in prog.modules for n, a in m.addresses.items() if n == name)
    return entry.ENTRIES[addr]


@pytest.mark.skipif(not entry.available(), reason="no fast entries on this interpreter")
def test_fast_entry_is_a_gate() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], x * 2 + 1, mode=NATIVE)
    call = _fast_entry(fn)
    a, out = np.arange(4, dtype="float32"), np.empty(4, "float32")
    assert call(0, executor.WHOLE, a, out) == 0
    np.testing.assert_array_equal(out, a * 2 + 1)
    for args, exc in [((0, 4, a), TypeError), ((0, 4, a, [1.0, 2.0]), TypeError),
                      ((0, 4, a, None), TypeError), ((-1, 4, a, out), ValueError),
                      ((3, 2, a, out), ValueError), (("0", 4, a, out), TypeError),
                      ((0, 2**70, a, out), OverflowError), ((), TypeError)]:
        with pytest.raises(exc):
            call(*args)
    sub = np.ma.masked_array(a)  # an ndarray subclass has the same struct: accepted
    assert call(0, executor.WHOLE, sub.data, out) == 0


@pytest.mark.skipif(not entry.available(), reason="no fast entries on this interpreter")
def test_kernels_run_through_fast_entries_also_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = T.fvector("x"), T.fvector("y")
    fn = graphc.function([x, y], T.exp(x) * y - 1, mode=NATIVE)
    _fast_entry(fn)  # exists
    n = executor.PARALLEL_MIN_ELEMENTS * 2 + 7  # split between threads when there are several
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(n).astype("float32"), rng.standard_normal(n).astype("float32")
    np.testing.assert_allclose(fn(a, b), np.exp(a) * b - 1, rtol=1e-5, atol=1e-6)


def test_fast_path_keeps_the_checks() -> None:
    x = T.fmatrix("x")
    s = T.tensor("float32", shape=(None, 3), name="s")
    fn = graphc.function([x, s], [x + 1, s * 2], mode=NATIVE)
    a = np.ones((2, 3), "float32")
    fn(a, a)
    with pytest.raises(TypeError, match="'x'.*float64"):
        fn(a.astype("float64"), a)
    with pytest.raises(TypeError, match="'x'.*2-d"):
        fn(a[0], a)
    with pytest.raises(ValueError, match="'s'.*static shape"):
        fn(a, np.ones((2, 4), "float32"))
    np.testing.assert_array_equal(fn([[1, 2, 3]], a)[0], [[2, 3, 4]])  # lists still convert
    big = np.full((2, 3), 5, ">f4")  # right dtype name, other byte order: converted, not misread
    assert big.dtype.name == "float32" and not big.dtype.isnative
    np.testing.assert_array_equal(fn(big, a)[0], np.full((2, 3), 6, "float32"))
    np.testing.assert_array_equal(fn(a.T.copy().T, a)[1], a * 2)


def test_outputs_never_alias_inputs_or_shared_values() -> None:
    x = T.fmatrix("x")
    w = graphc.shared(np.ones((2, 2), "float32"), name="w")
    new_w = w * 2
    fn = graphc.function([x], [x, x.T, new_w, w], updates=[(w, new_w)], mode=NATIVE)
    a = np.arange(4, dtype="float32").reshape(2, 2)
    same, view, out_w, old_w = fn(a)
    for o in (same, view):
        assert not np.may_share_memory(o, a)
    stored = w.get_value(borrow=True)
    assert not np.may_share_memory(out_w, stored) and not np.may_share_memory(old_w, stored)
    out_w[...] = -1  # the caller owns what it got
    np.testing.assert_array_equal(w.get_value(), np.full((2, 2), 2, "float32"))
    fn(a)
    np.testing.assert_array_equal(w.get_value(), np.full((2, 2), 4, "float32"))


def test_update_from_an_input_is_copied() -> None:
    x = T.fvector("x")
    w = graphc.shared(np.zeros(3, "float32"), name="w")
    fn = graphc.function([x], [], updates=[(w, x)], mode=NATIVE)
    a = np.ones(3, "float32")
    fn(a)
    a[0] = 7  # must not reach the shared variable
    np.testing.assert_array_equal(w.get_value(), [1, 1, 1])


def test_buffers_are_reused_but_never_under_a_live_result() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) + 1, mode=NATIVE)
    a = np.zeros(5, "float32")
    first = fn(a)
    second = fn(a + 1)
    assert not np.may_share_memory(first, second)
    np.testing.assert_allclose(first, np.full(5, 2, "float32"))
    np.testing.assert_allclose(second, np.full(5, np.e + 1, "float32"), rtol=1e-6)


@pytest.mark.parametrize("shape, pattern", [
    ((3, 4), (1, 0)), ((4,), ("x", 0)), ((), ("x", "x")), ((1, 1), (1,)), ((1, 1), ()),
    ((), ()), ((2, 1, 3), (2, "x", 0)), ((1,), ()), ((2, 3, 4), (2, 0, 1)), ((5, 1), (0, "x")),
])
def test_dimshuffle_views_match_the_reference(shape: tuple, pattern: tuple) -> None:
    x = T.tensor("float64", shape=(None,) * len(shape), name="x")
    out = x.dimshuffle(*pattern) if pattern else x.dimshuffle(())
    fn = graphc.function([x], [out, out * 2], mode=NATIVE)
    ref = graphc.function([x], [out, out * 2], mode="PY")
    a = np.arange(int(np.prod(shape)), dtype="float64").reshape(shape)
    for got, want in zip(fn(a), ref(a)):
        assert type(got) is np.ndarray and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        assert got.shape == want.shape
    for bad in [np.ones((2,) * len(shape)) if shape else None]:
        if bad is not None and any(p not in pattern for p in range(len(shape))):
            with pytest.raises(ValueError, match="dimshuffle"):
                fn(bad)


def test_gate_remembers_shapes_but_checks_every_call() -> None:
    x, y = T.fmatrix("x"), T.fmatrix("y")
    t = T.exp(x) * y
    fn = graphc.function([x, y], [t + 1, T.sqrt(abs(x)) - 2], mode=NATIVE)
    ref = graphc.function([x, y], [t + 1, T.sqrt(abs(x)) - 2], mode="PY")
    rng = np.random.default_rng(5)
    shapes = [((4, 5), (4, 5)), ((4, 1), (4, 5)), ((4, 5), (4, 5)), ((1, 5), (3, 5)), ((4, 5), (1, 5)),
              ((0, 5), (0, 5)), ((4, 5), (4, 5))]
    for sa, sb in shapes:
        a, b = rng.standard_normal(sa).astype("float32"), rng.standard_normal(sb).astype("float32")
        for got, want in zip(fn(a, b), ref(a, b)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="broadcast"):
            fn(a, np.ones((7, 3), "float32"))


def test_output_merged_with_an_update_is_a_copy() -> None:
    w = graphc.shared(np.ones(3, "float32"), name="w")
    fn = graphc.function([], T.exp(w) * 2, updates=[(w, T.exp(w) * 2)], mode=NATIVE)  # merged by CSE
    out = fn()
    assert not np.may_share_memory(out, w.get_value(borrow=True))
    out[:] = 0
    np.testing.assert_allclose(w.get_value(), np.full(3, np.e * 2, "float32"), rtol=1e-6)
