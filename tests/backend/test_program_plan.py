"""Shape-specialized plans (graphc.backend.llvm.plan): one native call per step.

Every test compares three paths over several calls: the plan (a default-mode function
after its second call), the per-node path (plans switched off), and mode='PY'.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import entry, plan
from graphc.compile import compiled_function
from graphc.compile import function as function_module
from graphc.compile.mode import Mode
from graphc.config import config

NATIVE = Mode("llvm", "fast_run")
pytestmark = pytest.mark.skipif(not entry.available() or plan.interpreter() is None,
                                reason="no plan interpreter on this interpreter")


def _no_plans(fn: function_module.Function) -> function_module.Function:
    fn._plan_builds = compiled_function._MAX_PLAN_BUILDS
    fn._record_in = -1
    return fn


def _mlp(mode: object, plans: bool = True, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    sizes = (5, 7, 3)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        params.append(graphc.shared(rng.standard_normal((a, b)).astype("float32"), name="W"))
        params.append(graphc.shared(np.zeros(b, "float32"), name="b"))
    x, y = T.fmatrix("x"), T.fmatrix("y")
    h = T.nnet.relu(T.dot(x, params[0]) + params[1])
    out = T.nnet.sigmoid(T.dot(h, params[2]) + params[3])
    loss = T.nnet.binary_crossentropy(out, y).mean()
    grads = graphc.grad(loss, params)
    t = graphc.shared(np.float32(0), name="t")
    updates = [(t, t + 1)]
    state = [t]
    for p, g in zip(params, grads):
        m = graphc.shared(np.zeros_like(p.get_value()), name="m")
        m1 = 0.9 * m + 0.1 * g
        updates += [(m, m1), (p, p - 0.05 * m1 / (1 + t))]
        state += [m, p]
    fn = graphc.function([x, y], [loss, out], updates=updates, mode=mode)
    return (fn if plans else _no_plans(fn)), state


def _batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (rng.standard_normal((n, 5)).astype("float32"),
            (rng.random((n, 3)) > 0.5).astype("float32"))


def test_plan_agrees_with_per_node_and_reference_over_calls_and_shapes() -> None:
    fns = [_mlp(NATIVE), _mlp(NATIVE, plans=False), _mlp("PY")]
    rng = np.random.default_rng(1)
    sizes = [4, 4, 4, 4, 6, 6, 6, 4, 4, 1, 4]
    used = []
    for n in sizes:
        x, y = _batch(rng, n)
        results = [fn(x, y) for fn, _ in fns]
        used.append(fns[0][0]._plan is not None and fns[0][0]._plan.key[0][0] == (n, 5))
        for got in results[:2]:
            for a, b in zip(got, results[2]):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for (_, s_plan), (_, s_node), (_, s_ref) in [fns]:
            for a, b, c in zip(s_plan, s_node, s_ref):
                np.testing.assert_allclose(a.get_value(), c.get_value(), rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(b.get_value(), c.get_value(), rtol=1e-5, atol=1e-6)
    assert fns[0][0]._plan is not None, fns[0][0]._plan_why
    assert sum(used) >= 5  # the plan ran, and was rebuilt for the new batch size
    assert fns[1][0]._plan is None


def test_outputs_never_alias_plan_buffers_or_shared_storage() -> None:
    fn, state = _mlp(NATIVE)
    rng = np.random.default_rng(2)
    x, y = _batch(rng, 4)
    first = [fn(x, y) for _ in range(3)]
    assert fn._plan is not None, fn._plan_why
    kept = [[o.copy() for o in r] for r in first]
    for _ in range(3):
        fn(x, y)
    for r, k in zip(first, kept):
        for a, b in zip(r, k):
            np.testing.assert_array_equal(a, b)  # later calls did not overwrite results
    loss, out = fn(x, y)
    for s in state:
        assert not np.shares_memory(out, s.get_value(borrow=True))
    assert not np.shares_memory(out, x)


def test_borrowed_shared_values_are_not_overwritten() -> None:
    fns = [_mlp(NATIVE), _mlp("PY")]
    rng = np.random.default_rng(3)
    x, y = _batch(rng, 4)
    for _ in range(3):
        for fn, _ in fns:
            fn(x, y)
    (fn, state), (ref, rstate) = fns
    assert fn._plan is not None
    assert fn._plan.owned  # updated in place
    held = [s.get_value(borrow=True) for s in state]  # the user keeps the current buffers
    copies = [h.copy() for h in held]
    for _ in range(4):
        fn(x, y)
        ref(x, y)
    for h, c in zip(held, copies):
        np.testing.assert_array_equal(h, c)
    for s, r in zip(state, rstate):
        np.testing.assert_allclose(s.get_value(), r.get_value(), rtol=1e-5, atol=1e-6)


def test_set_value_between_calls_is_seen() -> None:
    fns = [_mlp(NATIVE), _mlp("PY")]
    rng = np.random.default_rng(4)
    x, y = _batch(rng, 4)
    for step in range(8):
        if step == 4:  # same shape: adopted by the plan
            for (_, st) in fns:
                st[2].set_value(np.full((5, 7), 0.1, "float32"))
        if step == 6:  # another shape: the per-node path, then a plan for it
            for (_, st) in fns:
                st[2].set_value(np.full((5, 7), -0.2, "float32"), borrow=True)
        results = [fn(x, y) for fn, _ in fns]
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
        for a, b in zip(fns[0][1], fns[1][1]):
            np.testing.assert_allclose(a.get_value(), b.get_value(), rtol=1e-5, atol=1e-6)
    assert fns[0][0]._plan is not None


def test_update_reading_old_values_elsewhere() -> None:
    """Double buffering: an update may read another variable's old value, and an output the
    old value of an updated variable."""
    def make(mode: object) -> tuple:
        a = graphc.shared(np.arange(6, dtype="float64").reshape(2, 3), name="a")
        b = graphc.shared(np.ones((2, 3)), name="b")
        x = T.dmatrix("x")
        fn = graphc.function([x], [a * 2 + x, (a + b).sum()],
                             updates=[(a, a + b * x), (b, a * 0.5 - b)], mode=mode)
        return fn, (a, b)

    fns = [make(NATIVE), make("PY")]
    x = np.full((2, 3), 0.5)
    for _ in range(6):
        r = [fn(x) for fn, _ in fns]
        for p, q in zip(*r):
            np.testing.assert_allclose(p, q)
        for s, t in zip(fns[0][1], fns[1][1]):
            np.testing.assert_allclose(s.get_value(), t.get_value())
    assert fns[0][0]._plan is not None, fns[0][0]._plan_why
    assert len(fns[0][0]._plan.swaps) == 2  # each update reads the other's old value


def test_wrong_inputs_fall_back_with_the_same_errors() -> None:
    fn, _ = _mlp(NATIVE)
    ref, _ = _mlp(NATIVE, plans=False)
    rng = np.random.default_rng(5)
    x, y = _batch(rng, 4)
    for _ in range(3):
        fn(x, y)
        ref(x, y)
    assert fn._plan is not None
    bad = [(x.astype("float64"), y), (x[:, :4], y), (x[None], y), (x, y[:3]), ([1.0], y), (x,),
           (x, y, y)]
    for args in bad:
        errors = []
        for f in (fn, ref):
            try:
                f(*args)
                errors.append(None)
            except Exception as exc:  # noqa: BLE001 -- compared below
                errors.append((type(exc), str(exc)))
        assert errors[0] == errors[1], args
    # Arguments of the right values in another layout: computed, not refused.
    xf = np.asfortranarray(x)
    np.testing.assert_allclose(fn(xf, y)[1], ref(x, y)[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn(x=x, y=y)[0], ref(x=x, y=y)[0], rtol=1e-5, atol=1e-6)


def test_kernel_failure_reruns_the_per_node_path() -> None:
    def make(mode: object) -> tuple:
        emb = graphc.shared(np.arange(12, dtype="float32").reshape(4, 3), name="emb")
        w = graphc.shared(np.ones(3, dtype="float32"), name="w")
        idx = T.ivector("idx")
        loss = emb[idx].sum() + w.sum()
        upd = [(emb, emb - 0.1 * graphc.grad(loss, emb)), (w, w * 0.5 + 1)]
        return graphc.function([idx], loss, updates=upd, mode=mode), emb, w

    (fast, emb, w), (ref, remb, rw) = make(NATIVE), make("PY")
    fns = [fast, ref]
    good = np.array([0, 3, 1], dtype="int32")
    for _ in range(3):
        for f in fns:
            f(good)
    bad = np.array([0, 7, 1], dtype="int32")
    errs = []
    for f in fns:
        with pytest.raises(Exception) as info:
            f(bad)
        errs.append(type(info.value))
    assert errs[0] is errs[1] or issubclass(errs[0], errs[1]) or issubclass(errs[1], errs[0])
    np.testing.assert_allclose(emb.get_value(), remb.get_value())  # the failed call wrote nothing
    np.testing.assert_allclose(w.get_value(), rw.get_value())
    np.testing.assert_allclose(fns[0](good), fns[1](good))
    np.testing.assert_allclose(emb.get_value(), remb.get_value())
    np.testing.assert_allclose(w.get_value(), rw.get_value())
    assert fast._plan is not None and fast._plan.owned  # w is updated in place


def test_debug_and_nan_guard_use_the_per_node_path() -> None:
    fn, _ = _mlp("DEBUG")
    rng = np.random.default_rng(6)
    x, y = _batch(rng, 4)
    for _ in range(3):
        fn(x, y)
    assert fn._plan is None
    fn, _ = _mlp(NATIVE)
    for _ in range(3):
        fn(x, y)
    assert fn._plan is not None
    z = T.fvector("z")
    g = graphc.function([z], T.log(z) * 2, mode=NATIVE)
    for _ in range(3):
        g(np.ones(3, "float32"))
    assert g._plan is not None
    assert np.isnan(g(-np.ones(3, "float32"))).all()
    old = config.nan_guard
    config.nan_guard = True  # switched on after compiling: read per call
    try:
        with pytest.raises(Exception, match="NaN"):
            g(-np.ones(3, "float32"))
    finally:
        config.nan_guard = old


def test_threads_share_a_function() -> None:
    x = T.dvector("x")
    fn = graphc.function([x], T.exp(x) * 2 + x, mode=NATIVE)
    data = [np.full(50, k / 10) for k in range(8)]
    fn(data[0])
    fn(data[0])
    errors = []

    def work(k: int) -> None:
        for _ in range(200):
            got = fn(data[k])
            if not np.allclose(got, np.exp(data[k]) * 2 + data[k]):
                errors.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fn._plan is not None


def test_w4_step_runs_as_one_plan() -> None:
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    import w4_tiny

    fn = w4_tiny.graphc_step(w4_tiny.init_params())
    x, y = w4_tiny.data()
    for _ in range(3):
        fn(x, y)
    assert fn._plan is not None, fn._plan_why


def test_slices_and_shape_values_of_arguments() -> None:
    """Reference nodes returning views of a per-call value (slices, transposes) follow that
    value's data; values computed from shapes or constants are computed once."""
    def make(mode: object) -> tuple:
        s = graphc.shared(np.zeros(3, "float32"), name="s")
        x = T.fmatrix("x")
        outs = [x[1:, ::2] * 2, (x[0] + x.shape[0]).sum(), x.T[1] - s.sum(), x[:, 1:]]
        fn = graphc.function([x], outs, updates=[(s, s + x[:, 0].sum() / 4)], mode=mode)
        return fn, s

    (fn, s), (ref, rs) = make(NATIVE), make("PY")
    rng = np.random.default_rng(7)
    for n in [4, 4, 4, 4, 5, 5, 5]:
        x = rng.standard_normal((n, 3)).astype("float32")
        got, want = fn(x), ref(x)
        for a, b in zip(got, want):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            assert not np.shares_memory(a, x)
        np.testing.assert_allclose(s.get_value(), rs.get_value(), rtol=1e-5, atol=1e-6)
    assert fn._plan is not None, fn._plan_why


def test_values_computed_natively_from_shapes_are_constants_of_the_plan() -> None:
    """``x.shape[0] * x.shape[1]`` is a native kernel whose inputs are all fixed by the
    plan's key: computed once, so the reshape it feeds stays a view and the graph a plan."""
    def make(mode: object) -> object:
        x = T.ftensor3("x")
        flat = x.reshape((x.shape[0] * x.shape[1], -1))
        return graphc.function([x], [flat * 2, flat.shape[0] + 0], mode=mode)

    fn, ref = make(NATIVE), make("PY")
    rng = np.random.default_rng(3)
    for shape in [(4, 5, 6), (2, 3, 6), (4, 5, 6)]:
        for _ in range(3):
            x = rng.standard_normal(shape).astype("float32")
            for a, b in zip(fn(x), ref(x)):
                assert a.shape == b.shape and a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
        assert fn._plan is not None, fn._plan_why
        assert fn._plan.key[0][0] == shape


def test_update_to_a_value_fixed_by_shapes_keeps_its_kernel() -> None:
    def make(mode: object) -> tuple:
        s = graphc.shared(np.ones((3, 4), "float32"), name="s")
        x = T.fmatrix("x")
        new = T.alloc(T.cast(x.shape[0], "float32"), 3, 4)  # fixed by the key's shapes
        fn = graphc.function([x], (x * s).sum(), updates=[(s, new)], mode=mode)
        return fn, s

    (fn, s), (ref, rs) = make(NATIVE), make("PY")
    for k in range(4):
        s.set_value(np.full((3, 4), k, "float32"))
        rs.set_value(np.full((3, 4), k, "float32"))
        x = np.ones((3, 4), "float32")
        assert fn(x) == ref(x)
        np.testing.assert_array_equal(s.get_value(), rs.get_value())
    assert fn._plan is not None, fn._plan_why


def test_keras_like_training_runs_as_a_plan() -> None:
    from frontends.keras_like.layers import Dense, Dropout
    from frontends.keras_like.models import Sequential

    rng = np.random.default_rng(0)
    x = rng.random((64, 6)).astype("float32")
    y = (rng.random((64, 1)) > 0.5).astype("float32")
    model = Sequential([Dense(8, input_dim=6, activation="relu"), Dropout(0.2),
                        Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    train = model._train_fn
    assert train._plan is not None, train._plan_why


def test_view_outputs_held_by_the_caller_keep_their_values() -> None:
    x = T.fmatrix("x")
    fn = graphc.function([x], [(x * 2).T, (x + 1)[0], x[1:]], mode=NATIVE)
    rng = np.random.default_rng(8)
    held = []
    for _ in range(6):
        a = rng.standard_normal((3, 4)).astype("float32")
        held.append((a.copy(), fn(a)))
        del a  # the argument may be freed: nothing returned may point into it
    assert fn._plan is not None, fn._plan_why
    for a, (t, row, rest) in held:
        np.testing.assert_array_equal(t, (a * 2).T)
        np.testing.assert_array_equal(row, a[0] + 1)
        np.testing.assert_array_equal(rest, a[1:])


def test_shared_value_of_another_layout_keeps_results_and_plan() -> None:
    fns = [_mlp(NATIVE), _mlp("PY")]
    rng = np.random.default_rng(9)
    x, y = _batch(rng, 4)
    for step in range(9):
        if step == 4:  # a Fortran-ordered value, borrowed: the per-node path runs it
            for (_, st) in fns:
                st[2].set_value(np.asfortranarray(np.full((5, 7), 0.3, "float32")), borrow=True)
        results = [fn(x, y) for fn, _ in fns]
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
        for a, b in zip(fns[0][1], fns[1][1]):
            np.testing.assert_allclose(a.get_value(), b.get_value(), rtol=1e-5, atol=1e-6)
    assert fns[0][0]._plan is not None
    fn = fns[0][0]
    before = fn._plan
    fn(x, y)
    assert fn._plan is before  # running as a plan again


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_float_arguments(dtype: str) -> None:
    def make(mode: object, **kw: object) -> tuple:
        w = graphc.shared(np.ones(3, dtype), name="w")
        x = T.tensor(dtype, (None,), "x")
        lr = T.tensor(dtype, (), "lr")
        fn = graphc.function([x, lr], (w * x).sum() * lr, updates=[(w, w - lr * x)], mode=mode, **kw)
        return fn, w

    (fn, w), (ref, rw) = make(NATIVE), make("PY")
    x = np.arange(3, dtype=dtype)
    for lr in [0.1, 0.1, 0.1, 1e-3, 0.3333333333333333, float("inf"), 0.25]:
        got, want = fn(x, lr), ref(x, lr)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(w.get_value(), rw.get_value())
    assert fn._plan is not None, fn._plan_why
    plan = fn._plan
    fn(x, 0.5)
    assert fn._plan is plan
    if dtype == "float32":  # no downcasts allowed: the float is refused as before
        strict, _ = make(NATIVE, allow_input_downcast=False)
        for _ in range(3):
            strict(x, np.asarray(0.5, dtype))
        with pytest.raises(TypeError):
            strict(x, 0.5)


def test_update_changing_shape_stays_on_the_per_node_path() -> None:
    def make(mode: object) -> tuple:
        s = graphc.shared(np.zeros(2, "float32"), name="s")
        x = T.fvector("x")
        fn = graphc.function([x], s.sum() + x.sum(), updates=[(s, T.concatenate([s, x]))], mode=mode)
        return fn, s

    (fn, s), (ref, rs) = make(NATIVE), make("PY")
    x = np.ones(3, "float32")
    for _ in range(5):
        np.testing.assert_allclose(fn(x), ref(x))
        np.testing.assert_array_equal(s.get_value(), rs.get_value())
    assert s.get_value().shape == (17,)


def test_threads_training_in_place_lose_no_update() -> None:
    w = graphc.shared(np.zeros(64), name="w")
    x = T.dvector("x")
    fn = graphc.function([x], (w * x).sum(), updates=[(w, w - 0.5 * x)], mode=NATIVE)
    data = np.ones(64)
    fn(data)
    fn(data)
    assert fn._plan is not None and fn._plan.owned  # updated in place

    def work() -> None:
        for _ in range(300):
            fn(data)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = np.zeros(64)
    for _ in range(2 + 4 * 300):
        expected = expected - 0.5 * data
    np.testing.assert_array_equal(w.get_value(), expected)


def test_a_failing_call_does_not_use_up_the_recording() -> None:
    x = T.fvector("x")
    fn = graphc.function([x], T.exp(x) + 1, mode=NATIVE)
    a = np.zeros(4, "float32")
    fn(a)
    with pytest.raises(TypeError):
        fn(np.zeros((2, 2), "float32"))  # the call that would have been recorded
    fn(a)
    assert fn._plan is not None, fn._plan_why
    np.testing.assert_array_equal(fn(a), np.exp(a) + 1)
