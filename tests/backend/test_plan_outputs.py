"""Plans write their outputs straight into new arrays (graphc.backend.llvm.plan).

Each returned array must be the caller's alone: never a plan buffer, an input or shared
storage, never overwritten by a later call. Values are compared with mode='PY'.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import entry, executor, parallel, plan
from graphc.compile.mode import Mode

NATIVE = Mode("llvm", "fast_run")
pytestmark = pytest.mark.skipif(not entry.available() or plan.interpreter() is None,
                                reason="no plan interpreter on this interpreter")


def _pair(build: object, updates: object = None) -> tuple:
    """The same graph compiled natively and with mode='PY' (``build`` makes inputs, outputs
    and, when given, updates from fresh variables)."""
    fns = []
    for mode in (NATIVE, "PY"):
        ins, outs, upd, state = build()
        fns.append((graphc.function(ins, outs, updates=upd, mode=mode), state))
    return fns[0], fns[1]


def _kinds(fn: object) -> list[str]:
    assert fn._plan is not None, fn._plan_why
    return [kind for kind, _ in fn._plan.outputs]


def _split_steps(fn: object) -> list[int]:
    """The sizes of the plan's steps run through the native parallel-for."""
    t, at, split = fn._plan.table, int(fn._plan.table[plan.H_STEPS]), []
    for _ in range(int(t[plan.H_NSTEPS])):  # words: kernel, start (-threads: split), stop, count, slots
        if t[at + 1] < 0:
            split.append(int(t[at + 2]))
        at += 4 + int(t[at + 3])
    return split


def _check_fresh(results: list, protected: list, planned: bool) -> None:
    if planned:  # (the per-node path may return views of one another's arrays)
        for a, b in itertools.combinations(results, 2):
            assert not np.shares_memory(a, b)
    for r in results:
        for p in protected:
            assert not np.shares_memory(r, p)


def _run(pair: tuple, make_args: object, calls: int = 6) -> tuple[list, list]:
    """Calls both functions; returns every native result and its arguments (kept alive)."""
    (fn, state), (ref, rstate) = pair
    held, args_held = [], []
    for k in range(calls):
        args = make_args(k)
        planned = fn._plan is not None
        got, want = fn(*args), ref(*args)
        got_l = got if isinstance(got, list) else [got]
        want_l = want if isinstance(want, list) else [want]
        for a, b in zip(got_l, want_l):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for s, r in zip(state, rstate):
            np.testing.assert_allclose(s.get_value(), r.get_value(), rtol=1e-5, atol=1e-6)
        _check_fresh(got_l, list(args) + [s.get_value(borrow=True) for s in state], planned)
        held.append([(a, a.copy()) for a in got_l])
        args_held.append(args)
    for results in held:  # later calls did not overwrite earlier results
        for a, copy in results:
            np.testing.assert_array_equal(a, copy)
    return held, args_held


def _mats(seed: int, shape: tuple = (3, 4), n: int = 2) -> object:
    rng = np.random.default_rng(seed)
    return lambda k: tuple(rng.standard_normal(shape).astype("float32") for _ in range(n))


def test_kernel_outputs_are_written_into_new_arrays() -> None:
    def build() -> tuple:
        x, y = T.fmatrix("x"), T.fmatrix("y")
        return [x, y], T.exp(x) * y + 1, None, []

    pair = _pair(build)
    _run(pair, _mats(0))
    assert _kinds(pair[0][0]) == ["fresh"]
    assert pair[0][0]._plan.copied == 0


def test_intermediate_also_output_view_of_it_and_twice_returned() -> None:
    def build() -> tuple:
        x, y = T.fmatrix("x"), T.fmatrix("y")
        h = T.exp(x) * y
        z = T.dot(h, x.T)
        return [x, y], [h, z + h.sum(), h.T, h, h[1:], z, T.max(h, axis=1), T.argmax(h, axis=1)], None, []

    pair = _pair(build)
    _run(pair, _mats(1, (4, 4)))
    kinds = _kinds(pair[0][0])
    assert kinds[0] == "fresh" and kinds[3] == "again"  # h returned twice: two arrays
    assert kinds[2] == kinds[4] == "slot"  # views: copied
    assert kinds.count("fresh") >= 4


def test_multi_output_kernel() -> None:
    def build() -> tuple:
        x, y = T.fvector("x"), T.fvector("y")
        e = T.exp(x) * y
        return [x, y], [e + 1, e * 2, x - y], None, []

    pair = _pair(build)
    _run(pair, _mats(2, (7,)))
    fn = pair[0][0]
    assert _kinds(fn) == ["fresh"] * 3
    multi = [n for n, _ in fn.native_kernels() if len(n.outputs) > 1]
    assert multi, "expected a fused kernel writing two outputs"


def test_outputs_that_are_inputs_or_shared_storage() -> None:
    w0 = np.arange(4, dtype="float32")

    def build() -> tuple:
        w = graphc.shared(w0.copy(), name="w")
        x = T.fvector("x")
        return [x], [x, w, w * x, x.dimshuffle(0, "x")], None, [w]

    pair = _pair(build)
    _run(pair, _mats(3, (4,), 1))
    (fn, state), _ = pair
    assert _kinds(fn) == ["arg", "container", "fresh", "slot"]
    r = fn(np.ones(4, "float32"))
    r[1][:] = -1  # the caller owns what it got: the shared value is untouched
    np.testing.assert_array_equal(state[0].get_value(), w0)


def test_python_float_argument_returned() -> None:
    def build() -> tuple:
        x, lr = T.fvector("x"), T.fscalar("lr")
        return [x, lr], [x * lr, lr, lr + 1], None, []

    (fn, _), (ref, _) = _pair(build)
    x = np.arange(3, dtype="float32")
    for lr in [0.5, 0.5, 0.5, 0.25, np.float32(2), 1 / 3]:
        got, want = fn(x, lr), ref(x, lr)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    assert _kinds(fn) == ["fresh", "arg", "fresh"]


def test_old_values_of_updated_variables_returned() -> None:
    def build() -> tuple:
        w = graphc.shared(np.arange(4, dtype="float32"), name="w")
        v = graphc.shared(np.ones((2, 4), dtype="float32"), name="v")
        x = T.fvector("x")
        w1 = w - 0.5 * x  # (in place, were w not returned)
        return [x], [w, w * x, w1, v, v.T * 2, v.T], [(w, w1), (v, v + w1)], [w, v]

    pair = _pair(build)
    _run(pair, _mats(6, (4,), 1), calls=8)
    fn, state = pair[0]
    assert _kinds(fn) == ["old", "fresh", "container", "old", "fresh", "slot"]
    held = state[1].get_value(borrow=True)  # the user holds a shared value: still correct
    _run(pair, _mats(7, (4,), 1), calls=4)
    assert _kinds(fn)[0] == "old"
    v0 = np.full((2, 4), 3.0, "float32")
    for (_, st) in pair:  # set_value between calls: adopted (repair), old values follow
        st[1].set_value(v0)
    _run(pair, _mats(8, (4,), 1), calls=4)
    del held


def test_update_values_returned() -> None:
    def build() -> tuple:
        w = graphc.shared(np.ones((3, 4), "float32"), name="w")
        v = graphc.shared(np.zeros((3, 4), "float32"), name="v")
        x = T.fmatrix("x")
        w1 = w * 0.5 + x
        v1 = v + T.exp(x)
        return [x], [w1, v1, w1 * 2, v.T * 2], [(w, w1), (v, v1)], [w, v]

    pair = _pair(build)
    _run(pair, _mats(4, (3, 4), 1))
    assert _kinds(pair[0][0])[:2] == ["container", "container"]


def test_failures_and_misses_commit_nothing() -> None:
    def build() -> tuple:
        emb = graphc.shared(np.arange(12, dtype="float32").reshape(4, 3), name="emb")
        idx = T.ivector("idx")
        rows = emb[idx] * 2
        return [idx], [rows, rows.sum(axis=0)], [(emb, emb + 1)], [emb]

    (fn, (emb,)), (ref, (remb,)) = _pair(build)
    good = np.array([0, 3, 1], dtype="int32")
    for _ in range(3):
        for f in (fn, ref):
            f(good)
    assert fn._plan is not None, fn._plan_why
    first = fn(good)
    ref(good)
    kept = [a.copy() for a in first]
    with pytest.raises(Exception):  # noqa: B017 -- the reference's error, whatever its type
        fn(np.array([0, 9, 1], dtype="int32"))  # a kernel refuses: the per-node path raises
    with pytest.raises(Exception):  # noqa: B017
        ref(np.array([0, 9, 1], dtype="int32"))
    np.testing.assert_array_equal(emb.get_value(), remb.get_value())
    other = np.array([2, 2], dtype="int32")  # another shape: a MISS, then the per-node path
    for a, b in zip(fn(other), ref(other)):
        np.testing.assert_array_equal(a, b)
    for a, k in zip(first, kept):
        np.testing.assert_array_equal(a, k)
    for a, b in zip(fn(good), ref(good)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(emb.get_value(), remb.get_value())


def test_wrong_argument_counts_miss() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x), mode=NATIVE)
    a = np.zeros(3, "float32")
    for _ in range(3):
        fn(a)
    p = fn._plan
    assert p is not None and len(p.fresh) == 1
    # The interpreter counts the new output arrays among its arguments: a caller passing one
    # too many arguments cannot have them taken for an output.
    assert p.run(a) == plan.MISS
    assert p.run(a, a, a) == plan.MISS
    assert p.run(a, np.zeros(3, "float64")) == plan.MISS
    assert p.run(a, np.zeros(3, "float32")[::-1]) == plan.MISS  # not C-contiguous
    ro = np.zeros(3, "float32")
    ro.flags.writeable = False
    assert p.run(a, ro) == plan.MISS
    with pytest.raises(TypeError):
        fn(a, a)
    np.testing.assert_array_equal(fn(a), np.ones(3, "float32"))


def test_dropped_results_are_reused_held_ones_never() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) + 1, mode=NATIVE)
    a = np.linspace(-1, 1, 1000, dtype="float32")
    for _ in range(3):
        fn(a)
    assert _kinds(fn) == ["fresh"]
    addr = fn(a).__array_interface__["data"][0]
    seen = {fn(a).__array_interface__["data"][0] for _ in range(5)}
    assert addr in seen and len(seen) <= 2  # dropped results' buffers come back
    held = [fn(a + k) for k in range(5)]  # held ones (and views of them) are never reused
    view = fn(a + 10)[2:]
    for _ in range(3):
        fn(a)
    for k, r in enumerate(held):
        np.testing.assert_allclose(r, np.exp(a + k) + 1, rtol=1e-6)
    np.testing.assert_allclose(view, (np.exp(a + 10) + 1)[2:], rtol=1e-6)
    y = None
    for k in range(4):  # y = f(x) in a loop: the result before last is reused
        prev = y
        y = fn(a + k)
        if prev is not None:
            assert not np.shares_memory(prev, y)
        np.testing.assert_allclose(y, np.exp(a + k) + 1, rtol=1e-6)


def test_large_outputs_run_as_plans() -> None:
    # The kernels write into the returned arrays: nothing is copied, so even a few cheap
    # kernels writing MBs run as a plan (below the executor's thread split threshold).
    x, y = T.fvector("x"), T.fvector("y")
    fn = graphc.function([x, y], [x * y + 1, x - y], mode=NATIVE)
    n = max(50_000, executor.PARALLEL_MIN_ELEMENTS * executor.CHEAP_KERNEL_FACTOR // 2)
    a = np.linspace(-1, 1, n, dtype="float32")
    b = a[::-1].copy()
    results = [fn(a, b) for _ in range(4)]
    assert fn._plan is not None, fn._plan_why
    assert _kinds(fn) == ["fresh", "fresh"]
    for r, s in results:
        np.testing.assert_array_equal(r, a * b + 1)
        np.testing.assert_array_equal(s, a - b)
    assert not np.shares_memory(results[-1][0], results[-2][0])


@pytest.mark.skipif(executor.kernel_threads() < 2, reason="kernels are not split on one thread")
def test_kernels_split_across_threads_run_through_the_native_parallel_for() -> None:
    # The per-node path splits big kernels across threads; a plan does the same through
    # graphc.backend.llvm.parallel (a step whose start word is -threads), else declines.
    x, y = T.fvector("x"), T.fvector("y")
    fn = graphc.function([x, y], [T.exp(x) * y + T.tanh(x), x * y], mode=NATIVE)
    n = executor.PARALLEL_MIN_ELEMENTS * 2 + 37
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(n).astype("float32"), rng.standard_normal(n).astype("float32")
    held = []
    for k in range(6):
        got = fn(a + k, b)
        np.testing.assert_allclose(got[0], np.exp(a + k) * b + np.tanh(a + k), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], (a + k) * b, rtol=1e-6)
        held.append((k, got))
    for k, got in held:
        np.testing.assert_allclose(got[0], np.exp(a + k) * b + np.tanh(a + k), rtol=1e-5, atol=1e-6)
    if parallel.symbols() is None or not parallel.ENABLED:
        assert fn._plan is None and "parallel" in fn._plan_why
        assert fn._plan_builds == 1  # declined shapes are not recorded again
        return
    assert fn._plan is not None, fn._plan_why
    assert n in _split_steps(fn)
    assert _kinds(fn) == ["fresh", "fresh"]


def test_threads_get_their_own_outputs() -> None:
    x = T.dmatrix("x")
    fn = graphc.function([x], [T.exp(x) * 2 + x, x.sum(axis=0)], mode=NATIVE)
    data = [np.full((5, 8), k / 10) for k in range(6)]
    fn(data[0])
    fn(data[0])
    assert fn._plan is not None
    errors: list[int] = []

    def work(k: int) -> None:
        kept = [fn(data[k]) for _ in range(150)]
        want = [np.exp(data[k]) * 2 + data[k], data[k].sum(axis=0)]
        for got in kept:
            if not all(np.allclose(g, w) for g, w in zip(got, want)):
                errors.append(k)
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _kinds(fn) == ["fresh", "fresh"]


@pytest.mark.skipif(executor.kernel_threads() < 2, reason="kernels are not split on one thread")
def test_split_random_kernel_in_a_plan_follows_the_stream() -> None:
    from graphc.backend.llvm.random_kernels import SPLIT_MIN

    n = SPLIT_MIN["uniform"] + 5
    runs = []
    for mode in ("PY", NATIVE):
        srng = T.random.RandomStream(11)
        x = T.dvector("x")
        fn = graphc.function([x], srng.uniform((n,), dtype="float64") + x, mode=mode)
        a = np.zeros(n)
        runs.append([fn(a) for _ in range(5)])
    for want, got in zip(*runs):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    if parallel.symbols() is not None and parallel.ENABLED:
        assert fn._plan is not None, fn._plan_why
        assert n in _split_steps(fn)


def test_threads_share_a_plan_with_split_steps() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) * 0.5 + T.tanh(x), mode=NATIVE)
    n = executor.PARALLEL_MIN_ELEMENTS * 2 + 3
    data = [np.full(n, k / 7, dtype="float32") for k in range(4)]
    fn(data[0])
    fn(data[0])
    errors: list[int] = []

    def work(k: int) -> None:
        want = np.exp(data[k]) * 0.5 + np.tanh(data[k])
        kept = [fn(data[k]) for _ in range(25)]
        if not all(np.allclose(g, want, rtol=1e-5) for g in kept):
            errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_large_copied_outputs_decline_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    # A view of a returned intermediate is copied by a plan but returned as is by the
    # per-node path: 200 KB of it costs more than a plan saves. Views of inputs are copied by
    # both; the one view of an intermediate returned alone is a view of a new array.
    monkeypatch.setenv("GRAPHC_THREADS", "1")  # (read when compiling) no kernel is split
    x = T.fmatrix("x")
    a = np.random.default_rng(0).random((200, 250), dtype="float32")  # 200 KB
    for outs, kinds in (([x * 2, (x * 2).T], None), ([x.T, x * 2], ["slot", "fresh"]),
                        ([(x * 2).T], ["view"])):
        fn = graphc.function([x], outs, mode=NATIVE)
        for _ in range(4):
            got = fn(a)
            np.testing.assert_array_equal(got[-1], a.T * 2 if kinds != ["slot", "fresh"] else a * 2)
            assert not np.shares_memory(got[0], a)
        assert (fn._plan and _kinds(fn)) == kinds, fn._plan_why


def test_views_of_intermediates_returned_as_views_of_new_arrays() -> None:
    def build() -> tuple:
        x, y = T.fmatrix("x"), T.fmatrix("y")
        h = T.exp(x) * y
        g = x * y + 1
        return [x, y], [h.T, g[1:, ::-1], g.T, (x - y).reshape((-1,))], None, []

    pair = _pair(build)
    held, _ = _run(pair, _mats(9, (40, 50)))
    fn = pair[0][0]
    assert _kinds(fn) == ["view", "view", "slot", "view"]  # g viewed twice: one is a copy
    (ht, _), _, _, (flat, _) = held[-1]
    assert ht.base is not None and flat.base is not None
    assert not np.shares_memory(ht, flat)


def test_chained_broadcast_and_reversed_views_of_new_arrays() -> None:
    def build() -> tuple:
        x, y = T.fmatrix("x"), T.fmatrix("y")
        h, g, k = T.exp(x) * y, x * y + 1, x - y * 2
        return [x, y], [(h.T)[1:, ::2], g.dimshuffle("x", 1, "x", 0), k[::-1, 3:]], None, []

    pair = _pair(build)
    _run(pair, _mats(10, (60, 70)))
    assert _kinds(pair[0][0]) == ["view"] * 3
