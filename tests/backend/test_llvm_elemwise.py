"""Native elementwise kernels against the reference evaluator: every op, dtypes, shapes,
broadcasting, non-contiguous inputs."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.compile.mode import Mode
from graphc.ops import elemwise as E

NATIVE = Mode("llvm", "none")  # no rewrites: one Elemwise node per op
REF = Mode("py", "none")
DTYPES = ["float32", "float64", "int32", "int64", "bool"]
# NumPy itself rejects these (bool negative/subtract/sign) or computes in float16, which the
# kernels leave to the reference.
NO_KERNEL = {("neg", "bool"), ("sub", "bool"), ("sgn", "bool")}
FLOAT16_LOOPS = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "sin", "cos",
                 "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arctanh"}


def values(dtype: str, shape: tuple[int, ...], rng: np.random.Generator, name: str = "",
           pos: int = 0) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith("int"):
        if name == "pow" and pos == 1:
            return rng.integers(0, 6, shape).astype(dtype)
        return rng.integers(-40, 40, shape).astype(dtype)
    x = rng.standard_normal(shape) * 3
    flat = x.reshape(-1)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -2.5, 1e30]
    k = min(len(specials), flat.size // 3)
    flat[:k] = specials[:k]
    if name in ("arcsin", "arccos", "arctanh"):
        x = np.tanh(x)
    return x.astype(dtype)


def arity(name: str) -> list[int]:
    for nin in (1, 2, 3):
        try:
            E._FUNCS[name](*[T.lscalar() for _ in range(nin)])
        except TypeError:
            continue
        return [2, 3] if name in ("add", "mul") else [nin]
    raise AssertionError(name)


def build(name: str, dtypes: list[str], ndim: int = 2):
    xs = [T.tensor(d, (None,) * ndim, name=f"x{i}") for i, d in enumerate(dtypes)]
    out = E._FUNCS[name](*xs)
    return xs, out


def check(got: np.ndarray, want: np.ndarray, what: str, atol: float = 0.0) -> None:
    """Single ops agree to a few ulp; ``atol`` covers cancellation in compound expressions."""
    assert got.dtype == want.dtype, what
    assert got.shape == want.shape, what
    if got.dtype.kind == "f":
        rtol = 2e-6 if got.dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


CASES = [(name, dt, n) for name in sorted(E._FUNCS) for dt in DTYPES for n in arity(name)]


@pytest.mark.parametrize("name,dtype,nin", CASES, ids=[f"{a}-{b}-{c}" for a, b, c in CASES])
def test_op_native_matches_reference(name: str, dtype: str, nin: int) -> None:
    dtypes = [dtype] * nin
    if name == "switch":
        dtypes[0] = "bool"
    try:
        xs, out = build(name, dtypes)
    except TypeError:
        pytest.skip(f"{name} does not accept {dtype}")
    fn = graphc.function(xs, out, mode=NATIVE)
    ref = graphc.function(xs, out, mode=REF)
    prog = fn._program
    expect_native = (name, dtype) not in NO_KERNEL and not (dtype == "bool" and name in FLOAT16_LOOPS)
    assert bool(prog.native_nodes) == expect_native, prog.fallback_nodes
    rng = np.random.default_rng(abs(hash((name, dtype))) % 2**32)
    shapes = [[(5, 7)] * nin, [(5, 1)] + [(1, 7)] * (nin - 1), [(1, 1)] + [(4, 9)] * (nin - 1),
              [(0, 3)] * nin, [(1, 1)] * nin]
    for shp in shapes:
        args = [values(d, s, rng, name, i) for i, (d, s) in enumerate(zip(dtypes, shp))]
        try:
            want = ref(*args)
        except ValueError:
            with pytest.raises(ValueError):
                fn(*args)
            continue
        check(fn(*args), want, f"{name}{tuple(dtypes)} shapes {shp}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype: str) -> None:
    rng = np.random.default_rng(3)
    x, y = T.tensor(dtype, (None, None), "x"), T.tensor(dtype, (None, None), "y")
    out = E.maximum(x, y) if dtype == "bool" else E.add(E.mul(x, y), x)
    fn, ref = graphc.function([x, y], out, mode=NATIVE), graphc.function([x, y], out, mode=REF)
    a, b = values(dtype, (6, 8), rng), values(dtype, (8, 6), rng)
    big = values(dtype, (12, 17), rng)
    for u, v in [(a, b.T), (a[:, ::2].repeat(2, 1), a), (big[::2, 1:9], a), (big[1:7, ::2][:, :8], b.T),
                 (a[::-1], a[:, ::-1]), (np.broadcast_to(a[:1], (6, 8)), a)]:
        check(fn(u, v), ref(u, v), f"strides {u.strides} {v.strides}")


@pytest.mark.parametrize("ndim", [0, 1, 3, 4])
def test_ranks_and_broadcast_patterns(ndim: int) -> None:
    rng = np.random.default_rng(ndim)
    x, y = T.tensor("float32", (None,) * ndim, "x"), T.tensor("float32", (None,) * ndim, "y")
    out = E.tanh(x) * E.exp(y) - x
    fn, ref = graphc.function([x, y], out, mode=NATIVE), graphc.function([x, y], out, mode=REF)
    full = tuple(range(3, 3 + ndim))
    patterns = [(full, full)]
    for d in range(ndim):
        one = tuple(1 if k == d else s for k, s in enumerate(full))
        patterns += [(one, full), (full, one)]
    for sa, sb in patterns:
        a = rng.standard_normal(sa).astype("float32")
        b = rng.standard_normal(sb).astype("float32")
        check(fn(a, b), ref(a, b), f"{sa} {sb}", atol=1e-6)


def test_mixed_dtypes_and_constants() -> None:
    rng = np.random.default_rng(5)
    i, f, d = T.ivector("i"), T.fvector("f"), T.dvector("d")
    outs = [i + f, i * 2.5, f / i, i // 3, i % -3, E.cast(f, "int32"), E.cast(d, "float32"),
            E.cast(i, "bool"), E.switch(f > 0, i, d), E.clip(f, -1.0, 1.0), E.pow(f, 2),
            (i < 3) & (f > 0), E.second(d, i)]
    fn = graphc.function([i, f, d], outs, mode=NATIVE)
    ref = graphc.function([i, f, d], outs, mode=REF)
    args = [rng.integers(-9, 9, 11).astype("int32"), (rng.standard_normal(11) * 4).astype("float32"),
            rng.standard_normal(11) * 1e3]
    assert not fn._program.fallback_nodes
    for k, (g, w) in enumerate(zip(fn(*args), ref(*args))):
        check(g, w, f"output {k}", atol=1e-6)


def test_integer_division_semantics() -> None:
    x, y = T.lvector("x"), T.lvector("y")
    fn = graphc.function([x, y], [x // y, x % y], mode=NATIVE)
    ref = graphc.function([x, y], [x // y, x % y], mode=REF)
    lo = np.iinfo(np.int64).min
    a = np.array([7, -7, 7, -7, 0, 5, lo, lo, 3], dtype="int64")
    b = np.array([2, 2, -2, -2, 3, 0, -1, 1, 0], dtype="int64")
    with np.errstate(all="ignore"):
        for g, w in zip(fn(a, b), ref(a, b)):
            check(g, w, "floor division")


def test_float_division_and_nan_semantics() -> None:
    x, y = T.dvector("x"), T.dvector("y")
    outs = [x // y, x % y, E.maximum(x, y), E.minimum(x, y), E.sgn(x), E.round(x)]
    fn, ref = graphc.function([x, y], outs, mode=NATIVE), graphc.function([x, y], outs, mode=REF)
    a = np.array([7.5, -7.5, 7.5, -7.5, 0.0, 1.0, np.nan, 2.0, np.inf, 2.5, -0.5, 3.5])
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 0.0, 1.0, np.nan, 2.0, -np.inf, 0.0, 1.0])
    for k, (g, w) in enumerate(zip(fn(a, b), ref(a, b))):
        check(g, w, f"output {k}")


def test_integer_power_negative_exponent_raises_like_reference() -> None:
    x, y = T.ivector("x"), T.ivector("y")
    fn = graphc.function([x, y], x ** y, mode=NATIVE)
    assert fn._program.native_nodes
    np.testing.assert_array_equal(fn(np.array([2, 3], "int32"), np.array([10, 3], "int32")), [1024, 27])
    with pytest.raises(ValueError, match="negative"):
        fn(np.array([2, 3], "int32"), np.array([1, -1], "int32"))


NNET = ["sigmoid", "softplus", "hard_sigmoid", "softsign", "relu", "elu"]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("name", NNET)
def test_nnet_activations_native(name: str, dtype: str) -> None:
    fn_sym = getattr(T.nnet, name)
    rng = np.random.default_rng(11)
    x = T.tensor(dtype, (None, None), "x")
    outs = [fn_sym(x)] + ([fn_sym(x, 0.1)] if name in ("relu", "elu") else [])
    fn, ref = graphc.function([x], outs, mode=NATIVE), graphc.function([x], outs, mode=REF)
    assert not fn._program.fallback_nodes, fn._program.fallback_nodes
    for shape in [(3, 50), (1, 7), (0, 2)]:
        a = values(dtype, shape, rng, name) * (30 if dtype != "int32" else 1)
        for k, (g, w) in enumerate(zip(fn(a), ref(a))):
            check(g, w, f"{name} output {k} {shape}", atol=1e-30)


ALL_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float32", "float64"]


@pytest.mark.parametrize("src", ALL_DTYPES)
def test_casts_between_every_native_dtype(src: str) -> None:
    x = T.tensor(src, (None,), "x")
    targets = [d for d in ALL_DTYPES if d != src]
    outs = [E.cast(x, d) for d in targets]
    fn, ref = graphc.function([x], outs, mode=NATIVE), graphc.function([x], outs, mode=REF)
    assert not fn._program.fallback_nodes
    # Values every target represents (conversion out of range is undefined in C and NumPy).
    base = np.array([0, 1, 2, 7, 100, 127, 3.75, 0.5, 99.99])
    a = (base > 0) if src == "bool" else base.astype(src)
    for d, g, w in zip(targets, fn(a), ref(a)):
        check(g, w, f"{src} -> {d}")


@pytest.mark.parametrize("dtype", ["int8", "uint8", "uint32", "uint64", "int16"])
def test_small_and_unsigned_integer_arithmetic(dtype: str) -> None:
    x, y = T.tensor(dtype, (None,), "x"), T.tensor(dtype, (None,), "y")
    outs = [x + y, x - y, x * y, x // y, x % y, E.maximum(x, y), x < y, x ^ y, abs(x), -x, E.sgn(x)]
    fn, ref = graphc.function([x, y], outs, mode=NATIVE), graphc.function([x, y], outs, mode=REF)
    assert not fn._program.fallback_nodes
    info = np.iinfo(dtype)
    a = np.array([info.min, info.max, 0, 1, 5, 7, info.max // 2], dtype=dtype)
    b = np.array([1, 3, 0, info.max, 2, 0, 2], dtype=dtype)
    with np.errstate(all="ignore"):
        for k, (g, w) in enumerate(zip(fn(a, b), ref(a, b))):
            check(g, w, f"{dtype} output {k}")


def test_large_outputs_run_as_plans() -> None:
    # A plan's kernels write its outputs straight into new arrays (no copy), and a kernel the
    # per-node path splits across threads runs through the native parallel-for (W1).
    from graphc.backend.llvm import executor, parallel

    split_ok = executor.kernel_threads() < 2 or (parallel.ENABLED and parallel.symbols() is not None)
    x, y = T.fvector("x"), T.fvector("y")
    f = graphc.function([x, y], T.exp(x) * y)
    for n, planned in ((10**6, split_ok), (100, True)):
        g = graphc.function([x, y], T.exp(x) * y + 1)
        a = np.linspace(-1, 1, n, dtype="float32")
        b = a + 1  # (a plan refuses one array passed for two inputs)
        for _ in range(4):
            np.testing.assert_allclose(g(a, b), np.exp(a) * b + 1, rtol=1e-6)
        assert (g._plan is not None) == planned, g._plan_why
    big, big2 = np.ones(10**6, dtype="float32"), np.zeros(10**6, dtype="float32")
    for _ in range(6):  # recorded once
        f(big, big2)
    assert (f._plan is not None) == split_ok and f._plan_builds == 1
