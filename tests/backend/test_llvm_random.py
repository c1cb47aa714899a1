"""Native random kernels (graphc.backend.llvm.random_kernels) against the reference stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.compile.mode import Mode
from graphc.ops.random import RandomVariable, standard_normal

NATIVE = Mode("llvm", "fast_run")
DEBUG = Mode("debug", "fast_run")
MAX_NORMAL_ULP = 6  # float64 normals: graphc's log and the sin/cos kernels vs libm


def _random_nodes(fn: Any) -> list:
    return [n for n, _ in fn.native_kernels() if isinstance(n.op, RandomVariable)]


def _check_same(got: np.ndarray, want: np.ndarray, dist: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if dist != "normal" or got.dtype == np.float32:
        # float32 normals: float64 values a few ulp apart round to the same float32 except
        # at a rounding boundary (about one in 10**6 samples)
        if dist == "normal" and not np.array_equal(got, want):
            np.testing.assert_allclose(got, want, rtol=2 ** -23, atol=0)
            assert np.mean(got != want) < 1e-4
        else:
            np.testing.assert_array_equal(got, want)
        return
    ulp = np.abs(got - want) / np.spacing(np.maximum(np.abs(want), 1e-300))
    assert ulp.max(initial=0) <= MAX_NORMAL_ULP, ulp.max()


def _both(build: Callable[[Any], tuple[list, Any]], args: tuple = (), calls: int = 3, seed: int = 7,
          native: bool = True) -> tuple[list, list]:
    """Outputs and states of ``calls`` calls in mode PY and natively, each from ``seed``."""
    runs = []
    for mode in ("PY", NATIVE):
        srng = T.random.RandomStream(seed)
        inputs, out = build(srng)
        fn = graphc.function(inputs, out, mode=mode)
        if mode is NATIVE:
            assert bool(_random_nodes(fn)) == native, fn.native_kernels()
        states = [s for s, _ in srng.updates()]
        runs.append([(fn(*args), [s.get_value().copy() for s in states]) for _ in range(calls)])
    return runs[0], runs[1]


def _compare(build: Callable, dist: str, args: tuple = (), calls: int = 3, native: bool = True) -> None:
    ref, got = _both(build, args, calls, native=native)
    for (r, rs), (g, gs) in zip(ref, got):
        _check_same(np.asarray(g), np.asarray(r), dist)
        for a, b in zip(gs, rs):
            np.testing.assert_array_equal(a, b)
    assert [int(st[0][1]) for _, st in got] == list(range(1, calls + 1))  # the counter advanced


SHAPES = [(), (0,), (1,), (5,), (2, 3), (3, 257), (4, 1, 7), (2, 0, 3), (600, 1), (1000,)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dist,kwargs", [("uniform", {}), ("uniform", {"low": -3.0, "high": 0.5}),
                                         ("normal", {}), ("normal", {"avg": 2.0, "std": 0.25})])
def test_float_dists_match_reference(dist: str, kwargs: dict, shape: tuple, dtype: str) -> None:
    _compare(lambda s: ([], getattr(s, dist)(shape, dtype=dtype, **kwargs)), dist)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "bool", "float32", "float64"])
@pytest.mark.parametrize("shape,n,p", [((7,), 1, 0.5), ((3, 300), 1, 0.1), ((50,), 5, 0.3),
                                       ((4, 9), 200, 0.7), ((10,), 0, 0.5), ((10,), 3, 0.0),
                                       ((10,), 3, 1.0), ((), 2, 0.5)])
def test_binomial_matches_reference(dtype: str, shape: tuple, n: int, p: float) -> None:
    _compare(lambda s: ([], s.binomial(shape, n=n, p=p, dtype=dtype)), "binomial")


def test_tensor_parameters_broadcast() -> None:
    lo32, lo64 = T.fvector("lo32"), T.dvector("lo64")
    avg, std = T.dmatrix("avg"), T.fvector("std")
    n, p = T.ivector("n"), T.fmatrix("p")
    args = (np.array([0.0, 10.0, -5.0], "float32"), np.array([1.0, -2.0, 3.5]),
            np.arange(6.0).reshape(2, 3), np.array([0.5, 1.0, 2.0], "float32"),
            np.array([0, 1, 30], "int32"), np.array([[0.2, 0.5, 1.0], [0.0, 0.9, 0.3]], "float32"))
    ins = [lo32, lo64, avg, std, n, p]

    def build(srng: Any) -> tuple[list, list]:
        return ins, [
            srng.uniform((4, 3), low=lo32, high=lo32 + 1, dtype="float32"),   # float32 params
            srng.uniform((5, 2, 3), low=lo32, high=lo64, dtype="float64"),   # mixed widths
            srng.uniform(low=lo64, high=lo64 * 2, dtype="float32"),          # size from the params
            srng.normal((2, 3), avg=avg, std=std, dtype="float64"),
            srng.normal((7, 2, 3), avg=avg, std=std, dtype="float32"),
            srng.normal(avg=avg, std=3.0, dtype="float64"),
            srng.binomial((2, 3), n=n, p=p, dtype="int64"),
            srng.binomial((40, 2, 3), n=n, p=p, dtype="float32"),
            srng.binomial(n=n, p=0.25, dtype="int16"),
        ]

    ref, got = _both(build, args, calls=2)
    dists = ["uniform"] * 3 + ["normal"] * 3 + ["binomial"] * 3
    for (r, rs), (g, gs) in zip(ref, got):
        for a, b, dist in zip(g, r, dists):
            _check_same(a, b, dist)
        for a, b in zip(gs, rs):
            np.testing.assert_array_equal(a, b)


def test_parameter_static_shape_one_and_runtime_one() -> None:
    one = T.tensor("float64", shape=(1, 1), name="one")
    unknown = T.dmatrix("unknown")
    args = (np.array([[2.0]]), np.array([[0.5]]))

    def build(srng: Any) -> tuple[list, list]:
        return [one, unknown], [srng.uniform((3, 4), low=one, high=unknown, dtype="float64"),
                                srng.normal((5, 3), avg=one, std=unknown, dtype="float64"),
                                srng.binomial((6, 2), n=4, p=unknown, dtype="int32")]

    ref, got = _both(build, args)
    for (r, _), (g, _) in zip(ref, got):
        for a, b, dist in zip(g, r, ["uniform", "normal", "binomial"]):
            _check_same(a, b, dist)


def test_symbolic_sizes() -> None:
    x = T.matrix("x")
    k, m = T.lscalar("k"), T.iscalar("m")
    v = T.lvector("v")

    def build(srng: Any) -> tuple[list, list]:
        return [x, k, m, v], [srng.binomial(x.shape, p=0.5, dtype=x.dtype) * x,
                              srng.uniform((k, 3, m)),
                              srng.normal((k,), dtype="float64"),
                              srng.uniform(v, ndim=2, dtype="float64")]

    for shape, kk, mm, vv in [((6, 7), 5, 2, [2, 5]), ((1, 300), 0, 3, [0, 4]), ((0, 2), 1, 1, [1, 1])]:
        args = (np.ones(shape, "float32"), kk, mm, np.array(vv))
        ref, got = _both(build, args, calls=2)
        for (r, _), (g, _) in zip(ref, got):
            for a, b, dist in zip(g, r, ["binomial", "uniform", "normal", "uniform"]):
                _check_same(a, b, dist)


def test_stream_continues_identically_over_calls() -> None:
    def build(srng: Any) -> tuple[list, list]:
        return [], [srng.uniform((33,)), srng.normal((4, 5), dtype="float64"),
                    srng.binomial((9,), n=3, p=0.4)]

    ref, got = _both(build, calls=6)
    for step, ((r, rs), (g, gs)) in enumerate(zip(ref, got)):
        for a, b, dist in zip(g, r, ["uniform", "normal", "binomial"]):
            _check_same(a, b, dist)
        for a, b in zip(gs, rs):
            np.testing.assert_array_equal(a, b)
            assert a[1] == step + 1
    # the sample is a pure function of the state: reseeding replays it natively too
    srng = T.random.RandomStream(3)
    f = graphc.function([], srng.normal((5,)), mode=NATIVE)
    first = [f(), f()]
    srng.seed(3)
    np.testing.assert_array_equal(f(), first[0])
    np.testing.assert_array_equal(f(), first[1])


def test_state_counter_wraps() -> None:
    outs = []
    for mode in ("PY", NATIVE):
        srng = T.random.RandomStream(1)
        u = srng.uniform((6,), dtype="float64")
        (state, _), = srng.updates()
        state.set_value(np.array([123, 2**64 - 1], dtype=np.uint64))
        f = graphc.function([], u, mode=mode)
        outs.append((f(), state.get_value().copy(), f()))
    (a, sa, a2), (b, sb, b2) = outs
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, [123, 0])
    np.testing.assert_array_equal(sb, sa)
    np.testing.assert_array_equal(a2, b2)


@pytest.mark.parametrize("dist,size", [("uniform", 300_001), ("normal", 100_003), ("binomial", 300_001)])
def test_large_samples_split_over_threads(dist: str, size: int) -> None:
    # big enough for the executor's threads (SPLIT_MIN): every slice must continue the stream
    _compare(lambda s: ([], getattr(s, dist)((size,))), dist, calls=2)


def test_unsupported_forms_fall_back() -> None:
    nf = T.dvector("nf")
    ilo = T.ivector("ilo")
    # integer or float16 samples, float n, integer low: the reference perform, same values
    _compare(lambda s: ([], s.uniform((3,), dtype="int32")), "uniform", native=False)
    _compare(lambda s: ([], s.normal((3,), dtype="float16")), "normal", native=False)
    _compare(lambda s: ([nf], s.binomial((2,), n=nf, p=0.5)), "binomial", (np.array([2.0, 3.7]),),
             native=False)
    _compare(lambda s: ([ilo], s.uniform((3, 2), low=ilo, high=5.0, dtype="float64")), "uniform",
             (np.array([-4, 2], "int32"),), native=False)


@pytest.mark.parametrize("mode", ["PY", "NATIVE"])
def test_bad_values_raise_as_reference(mode: str) -> None:
    m = NATIVE if mode == "NATIVE" else "PY"
    srng = T.random.RandomStream(0)
    p, n = T.dvector("p"), T.lvector("n")
    f = graphc.function([p, n], srng.binomial((2,), n=n, p=p), mode=m)
    assert f(np.array([0.5, 1.0]), np.array([1, 2])).shape == (2,)
    bad = [([0.5, 1.5], [1, 1]), ([np.nan, 0.5], [1, 1]), ([0.5, 0.5], [1, -1]), ([-0.0, -1e-300], [1, 1])]
    for pv, nv in bad:
        with pytest.raises(ValueError):
            f(np.array(pv), np.array(nv))
    g = graphc.function([], srng.binomial((3,), p=1.5), mode=m)
    with pytest.raises(ValueError):
        g()
    k = T.lscalar("k")
    h = graphc.function([k], srng.uniform((k, 2)), mode=m)
    with pytest.raises(ValueError):
        h(-1)
    assert h(0).shape == (0, 2)
    lo = T.dvector("lo")
    q = graphc.function([lo], srng.uniform((4,), low=lo, dtype="float64"), mode=m)
    with pytest.raises(ValueError):
        q(np.zeros(3))  # parameters that do not fit the size
    v = T.lvector("v")
    r = graphc.function([v], srng.normal(v, ndim=2), mode=m)
    with pytest.raises(ValueError):
        r(np.array([2, 3, 4]))


def test_debug_mode_agrees() -> None:
    srng = T.random.RandomStream(5)
    x = T.dmatrix("x")
    out = srng.normal(x.shape, dtype="float64") + srng.uniform(x.shape, dtype="float64") * srng.binomial(
        x.shape, n=2, p=0.5, dtype="float64")
    f = graphc.function([x], out, mode=DEBUG)
    for _ in range(3):
        assert f(np.zeros((17, 5))).shape == (17, 5)


# -- statistics of the native samples ------------------------------------------------------
def _ks(sample: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray]) -> float:
    x = np.sort(sample.astype(np.float64))
    n = x.size
    f = cdf(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


N = 200_000
KS_BOUND = 1.95 / np.sqrt(N)  # p ~ 0.001


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_statistics(dtype: str) -> None:
    from scipy.special import ndtr

    srng = T.random.RandomStream(2026)
    f = graphc.function([], [srng.uniform((N,), low=-1.0, high=3.0, dtype=dtype),
                             srng.normal((N,), avg=1.5, std=2.0, dtype=dtype),
                             srng.binomial((N,), p=0.3, dtype=dtype),
                             srng.binomial((N,), n=12, p=0.25, dtype="int32")], mode=NATIVE)
    assert len(_random_nodes(f)) == 4
    u, z, bern, binom = f()
    assert u.min() >= -1 and u.max() <= 3
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 16 / 12) < 0.02
    assert _ks((u + 1) / 4, lambda x: np.clip(x, 0, 1)) < KS_BOUND
    assert abs(z.mean() - 1.5) < 0.02 and abs(z.std() - 2.0) < 0.02
    assert _ks((z - 1.5) / 2, ndtr) < KS_BOUND
    # Box-Muller pairs are independent
    zz = (z[: N // 2 * 2].reshape(-1, 2).astype(np.float64) - 1.5) / 2
    assert abs(np.corrcoef(zz[:, 0], zz[:, 1])[0, 1]) < 0.01
    assert abs(np.mean(zz[:, 0] ** 2 * zz[:, 1] ** 2) - 1) < 0.03
    assert set(np.unique(bern)) == {0, 1} and abs(bern.mean() - 0.3) < 0.005
    assert binom.min() >= 0 and binom.max() <= 12
    assert abs(binom.mean() - 3.0) < 0.02 and abs(binom.var() - 12 * 0.25 * 0.75) < 0.05
    # the whole distribution of counts: chi-square against the binomial pmf
    from scipy.stats import binom as binom_dist

    counts = np.bincount(binom, minlength=13)
    expected = binom_dist.pmf(np.arange(13), 12, 0.25) * N
    keep = expected > 5
    chi2 = float(np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep]))
    assert chi2 < 35  # 10 dof: p ~ 1e-4


def test_reference_normal_matches_textbook_box_muller() -> None:
    state = np.array([99, 4], dtype=np.uint64)
    z = standard_normal(state, 5)
    w = np.random.Philox(key=state, counter=0).random_raw(6) >> np.uint64(11)
    u1 = (w[0::2].astype(np.float64) + 1) * 2.0 ** -53
    u2 = w[1::2].astype(np.float64) * 2.0 ** -53
    r = np.sqrt(-2 * np.log(u1))
    want = np.stack([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], axis=1).reshape(-1)[:5]
    np.testing.assert_allclose(z, want, rtol=1e-12, atol=1e-13)


# -- a dropout training step ----------------------------------------------------------------
def test_dropout_training_step_same_in_both_modes() -> None:
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((32, 10)).astype("float32")
    yb = rng.integers(0, 3, 32)
    onehot = np.eye(3, dtype="float32")[yb]
    w1_0 = (rng.standard_normal((10, 16)) * 0.3).astype("float32")
    w2_0 = (rng.standard_normal((16, 3)) * 0.3).astype("float32")
    results = []
    for mode in ("PY", NATIVE):
        srng = T.random.RandomStream(11)
        w1, w2 = graphc.shared(w1_0.copy(), name="w1"), graphc.shared(w2_0.copy(), name="w2")
        x, y = T.matrix("x"), T.matrix("y")
        h = T.maximum(T.dot(x, w1), 0)
        mask = srng.binomial(h.shape, p=0.8, dtype="float32")  # keep probability 0.8
        h = h * mask / 0.8
        logits = T.dot(h, w2)
        loss = T.mean(T.sum(-y * T.nnet.log_softmax(logits), axis=1))
        g1, g2 = graphc.grad(loss, [w1, w2])
        step = graphc.function([x, y], [loss, mask], updates=[(w1, w1 - 0.1 * g1), (w2, w2 - 0.1 * g2)],
                               mode=mode)
        if mode is NATIVE:
            assert _random_nodes(step)
        trace = [step(xb, onehot) for _ in range(5)]
        results.append((trace, w1.get_value(), w2.get_value()))
    (t_py, w1_py, w2_py), (t_nat, w1_nat, w2_nat) = results
    for (l_py, m_py), (l_nat, m_nat) in zip(t_py, t_nat):
        np.testing.assert_array_equal(m_nat, m_py)
        np.testing.assert_allclose(l_nat, l_py, rtol=1e-5)
    np.testing.assert_allclose(w1_nat, w1_py, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w2_nat, w2_py, rtol=1e-4, atol=1e-6)
    assert 0.7 < np.mean(t_nat[0][1]) < 0.9


def test_keras_like_dropout_layer_same_in_both_modes() -> None:
    from frontends.keras_like.layers import Dropout

    outs = []
    for mode in ("PY", NATIVE):
        layer = Dropout(0.5, seed=3)
        x = T.matrix("x")
        f = graphc.function([x], layer.call(x, training=True), mode=mode)
        xv = np.ones((8, 100), "float32")
        outs.append([f(xv) for _ in range(3)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
        assert set(np.unique(a)) <= {0.0, 2.0}


def test_kernel_refuses_size_values_that_are_not_the_output_dims() -> None:
    # A caller replaying a recorded kernel call on new inputs (same shapes, other values)
    # must not get a sample of the old size: the kernel checks the size inputs.
    from graphc.backend.llvm.executor import WHOLE, _cfunc, _kernels

    srng = T.random.RandomStream(0)
    k, v = T.iscalar("k"), T.lvector("v")
    for inputs, sample, good, bad in [
        ([k], srng.uniform((k, 3)), [np.array(4, "int32"), np.array(3)], [np.array(5, "int32"), np.array(3)]),
        ([v], srng.normal(v, ndim=2), [np.array([4, 3])], [np.array([4, 2])]),
    ]:
        fn = graphc.function(inputs, sample, mode=NATIVE)
        (node,) = _random_nodes(fn)
        addr, _ = _kernels[f"{dict(fn.native_kernels())[node]}@O3"]
        cf = _cfunc(addr, 5 + len(good))
        state = np.array([1, 2], np.uint64)
        lo, hi = np.array(0.0, "float32"), np.array(1.0, "float32")
        new_state, out = np.zeros(2, np.uint64), np.empty((4, 3), "float32")
        assert cf(0, WHOLE, state, *good, lo, hi, new_state, out) == 0
        assert cf(0, WHOLE, state, *bad, lo, hi, new_state, out) != 0
        np.testing.assert_array_equal(new_state, [1, 3])


def test_repeated_calls_with_changing_sizes() -> None:
    # Repeated calls may run as a recorded plan (graphc.backend.llvm.plan): a new size value
    # with the same argument shapes must still give a sample of the new size, the stream
    # continuing as in PY.
    ks = [4, 4, 4, 4, 5, 5, 5, 3, 3, 3]
    results = []
    for mode in ("PY", NATIVE):
        srng = T.random.RandomStream(1)
        k, x = T.lscalar("k"), T.matrix("x")
        f = graphc.function([k, x], [srng.uniform((k, 3)), srng.binomial(x.shape, p=0.5, dtype="float32") * x,
                                     srng.normal((k,), dtype="float64")], mode=mode)
        # arrays, not Python ints: only exact ndarray arguments take a plan
        results.append([f(np.array(kk), np.ones((2, 7), "float32")) for kk in ks])
        if mode is NATIVE:
            assert getattr(f, "_plan", "no plans") is not None, getattr(f, "_plan_why", "")
    for kk, ref, got in zip(ks, *results):
        assert got[0].shape == (kk, 3) and got[2].shape == (kk,)
        for a, b, dist in zip(got, ref, ["uniform", "binomial", "normal"]):
            _check_same(a, b, dist)
