"""Accuracy of the vectorizable math in IR: max ulp error over a wide range and special values."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
from llvmlite import ir

from graphc.backend.llvm import jit, vmath, vmath_pow, vmath_trig
from graphc.backend.llvm.irutil import F32, F64, I64, PTR

NAMES = ["exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "tanh", "sigmoid", "softplus", "erf",
         "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arctanh"]
# Measured maxima are 1-3 ulp against a correctly rounded reference; allow a little slack.
MAX_ULP = 4


@pytest.fixture(scope="module")
def kernels() -> dict:
    """One loop ``dst[i] = f(src[i])`` per function and float type, in a single module."""
    module = ir.Module("vmath_test")
    names = []
    for nm in NAMES:
        for ty, tag in ((F32, "f32"), (F64, "f64")):
            fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, PTR, PTR]), name=f"t_{nm}_{tag}")
            n, src, dst = fn.args
            entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
            b = ir.IRBuilder(entry)
            b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
            b.position_at_end(loop)
            i = b.phi(I64)
            i.add_incoming(ir.Constant(I64, 0), entry)
            v = b.load(b.gep(src, [i], source_etype=ty), typ=ty)
            b.store(vmath.call_math(b, nm, v), b.gep(dst, [i], source_etype=ty))
            nxt = b.add(i, ir.Constant(I64, 1))
            i.add_incoming(nxt, loop)
            b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
            b.position_at_end(done)
            b.ret_void()
            names.append(fn.name)
    for ty, tag in ((F32, "f32"), (F64, "f64")):
        names.append(_pow_loop(module, ty, tag))
    compiled = jit.compile_module(module, names)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
    proto2 = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    protos = {n: proto2 if "pow" in n else proto for n in names}
    return {"module": compiled, **{n: protos[n](compiled.addresses[n]) for n in names}}


def _pow_loop(module: ir.Module, ty: ir.Type, tag: str) -> str:
    """``dst[i] = pow(x[i], y[i])``."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, PTR, PTR, PTR]), name=f"t_pow_{tag}")
    n, xs, ys, dst = fn.args
    entry, loop, done = (fn.append_basic_block(s) for s in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, ir.Constant(I64, 0)), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    x = b.load(b.gep(xs, [i], source_etype=ty), typ=ty)
    y = b.load(b.gep(ys, [i], source_etype=ty), typ=ty)
    b.store(vmath_pow.call_pow(b, x, y), b.gep(dst, [i], source_etype=ty))
    nxt = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return fn.name


def run(kernels: dict, name: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    kernels[f"t_{name}_{'f32' if x.dtype == np.float32 else 'f64'}"](x.size, x.ctypes.data, out.ctypes.data)
    return out


def _erf_ld(x: np.ndarray) -> np.ndarray:
    return np.frompyfunc(math.erf, 1, 1)(x.astype(np.float64)).astype(np.float64)


LD = np.longdouble
# References in extended precision (x87 80-bit here), rounded once to the tested type.
TRUTH = {
    "exp": np.exp, "expm1": np.expm1, "exp2": np.exp2, "log": np.log, "log1p": np.log1p,
    "log2": np.log2, "log10": np.log10, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "arctanh": np.arctanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.where(x > 0, x + np.log1p(np.exp(-x)), np.log1p(np.exp(x))),
}


def truth(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if name == "erf":
            return _erf_ld(x).astype(x.dtype)
        return TRUTH[name](x.astype(LD)).astype(x.dtype)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in representable values (NaN matches NaN only; -0 == +0)."""
    ut = np.uint32 if a.dtype == np.float32 else np.uint64
    sign = ut(1) << ut(8 * a.dtype.itemsize - 1)

    def ordered(v: np.ndarray) -> np.ndarray:
        """Unsigned keys in the order of the floats (-0 and +0 share one)."""
        u = v.view(ut).astype(np.uint64)
        neg = (u & np.uint64(sign)) != 0
        return np.where(neg, np.uint64(sign) - (u & ~np.uint64(sign)), np.uint64(sign) + u)

    oa, ob = ordered(a), ordered(b)
    d = (np.maximum(oa, ob) - np.minimum(oa, ob)).astype(float)
    d[np.isnan(a) & np.isnan(b)] = 0
    d[np.isnan(a) ^ np.isnan(b)] = np.inf
    return d


def sample(dtype: type, rng: np.random.Generator, n: int) -> np.ndarray:
    fi = np.finfo(dtype)
    top = np.log(float(fi.max))
    parts = [
        rng.uniform(-1, 1, n), rng.uniform(-20, 20, n), rng.uniform(-1.05 * top, 1.05 * top, n // 2),
        np.exp(rng.uniform(-top, top, n)) * rng.choice([-1, 1], n),  # every magnitude
        rng.uniform(-1e-3, 1e-3, n // 4), rng.standard_normal(n // 4) * 1e-8,
        np.linspace(-6, 6, n), rng.uniform(-1.0, -0.5, n // 4),  # log1p near -1
    ]
    return np.concatenate(parts).astype(dtype)


def specials(dtype: type) -> np.ndarray:
    fi = np.finfo(dtype)
    vals = [0.0, -0.0, np.inf, -np.inf, np.nan, float(fi.max), -float(fi.max), float(fi.tiny),
            -float(fi.tiny), float(fi.smallest_subnormal), -float(fi.smallest_subnormal), 1.0, -1.0,
            88.72, 88.73, -87.3, -103.9, -104.5, 709.7, 709.79, -745.0, 710.0, -746.0, 1e30, -1e30]
    # Multiples of pi/2 (where sin, cos or tan has a zero or a pole) and the trig reductions'
    # range limits, from both sides.
    quarter = np.arange(-3000, 3001) * (np.pi / 2)
    quarter = np.concatenate([quarter, np.arange(1, 200) * (np.pi / 2) * 2.0 ** 18])
    limits = [vmath_trig.LIMIT[True], vmath_trig.LIMIT[False], vmath_trig.F32_FAST_LIMIT]
    lim = np.array(limits)
    edges = np.concatenate([np.nextafter(lim, 0), lim, np.nextafter(lim, np.inf)])
    with np.errstate(over="ignore"):
        out = np.concatenate([np.array(vals, dtype=np.float64), quarter, edges, -edges]).astype(dtype)
        return np.concatenate([out, np.nextafter(out, np.inf, dtype=dtype)[: len(quarter)]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_max_ulp_error(kernels: dict, name: str, dtype: type) -> None:
    rng = np.random.default_rng(7)
    n = 20_000 if name == "erf" and dtype == np.float64 else 100_000
    x = np.concatenate([sample(dtype, rng, n), specials(dtype)])
    if name == "erf" and dtype == np.float64:
        x = x[::4]  # math.erf per element is slow
    got = run(kernels, name, x)
    want = truth(name, x)
    err = ulp_distance(got, want)
    worst = int(np.argmax(err))
    assert err.max() <= MAX_ULP, (
        f"{name}[{np.dtype(dtype).name}]: {err.max()} ulp at x={x[worst]!r}: got {got[worst]!r}, "
        f"want {want[worst]!r}"
    )


# (input, exact result) pairs: lists, since 0.0 and -0.0 are equal dict keys.
EXACT = {
    "exp": [(np.inf, np.inf), (-np.inf, 0.0), (0.0, 1.0), (-0.0, 1.0)],
    "expm1": [(np.inf, np.inf), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0)],
    "exp2": [(np.inf, np.inf), (-np.inf, 0.0), (0.0, 1.0)],
    "log": [(0.0, -np.inf), (-0.0, -np.inf), (np.inf, np.inf), (-1.0, np.nan), (-np.inf, np.nan), (1.0, 0.0)],
    "log2": [(0.0, -np.inf), (np.inf, np.inf), (-1.0, np.nan), (1.0, 0.0), (8.0, 3.0)],
    "log10": [(0.0, -np.inf), (np.inf, np.inf), (-1.0, np.nan), (1.0, 0.0)],
    "log1p": [(-1.0, -np.inf), (-2.0, np.nan), (np.inf, np.inf), (-np.inf, np.nan), (0.0, 0.0), (-0.0, -0.0)],
    "tanh": [(np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0)],
    "sigmoid": [(np.inf, 1.0), (-np.inf, 0.0), (0.0, 0.5)],
    "softplus": [(np.inf, np.inf), (-np.inf, 0.0)],
    "erf": [(np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0)],
    "sin": [(np.inf, np.nan), (-np.inf, np.nan), (0.0, 0.0), (-0.0, -0.0)],
    "cos": [(np.inf, np.nan), (-np.inf, np.nan), (0.0, 1.0), (-0.0, 1.0)],
    "tan": [(np.inf, np.nan), (-np.inf, np.nan), (0.0, 0.0), (-0.0, -0.0)],
    "arcsin": [(0.0, 0.0), (-0.0, -0.0), (2.0, np.nan), (-np.inf, np.nan)],
    "arccos": [(1.0, 0.0), (2.0, np.nan), (np.inf, np.nan)],
    "arctan": [(0.0, 0.0), (-0.0, -0.0)],
    "sinh": [(np.inf, np.inf), (-np.inf, -np.inf), (0.0, 0.0), (-0.0, -0.0), (1e4, np.inf)],
    "cosh": [(np.inf, np.inf), (-np.inf, np.inf), (0.0, 1.0), (-1e4, np.inf)],
    "arctanh": [(0.0, 0.0), (-0.0, -0.0), (1.0, np.inf), (-1.0, -np.inf), (2.0, np.nan), (np.inf, np.nan)],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_special_values(kernels: dict, name: str, dtype: type) -> None:
    cases = EXACT[name]
    x = np.array([c[0] for c in cases] + [np.nan], dtype=dtype)
    want = np.array([c[1] for c in cases] + [np.nan], dtype=dtype)
    got = run(kernels, name, x)
    for xi, g, w in zip(x, got, want):
        assert (np.isnan(g) and np.isnan(w)) or (g == w and np.signbit(g) == np.signbit(w)), (
            f"{name}({xi!r}) = {g!r}, expected {w!r}"
        )


def test_loops_vectorize(kernels: dict) -> None:
    """The point of writing the math in IR: loops over it use 8-wide float32 vectors."""
    text = kernels["module"].opt_ir_text
    libm = ["sin", "cos", "tan", "pow", "asin", "acos", "atan", "sinh", "cosh", "atanh", "exp", "log"]
    for name in NAMES + ["pow"]:
        for tag, ty in (("f32", "float"), ("f64", "double")):
            body = text[text.index(f"@t_{name}_{tag}("):]
            body = body[: body.index("\n}\n")]
            assert any(f"<{w} x {ty}>" in body for w in (2, 4, 8, 16)), (name, tag)
            # No libm call per element: only the huge-argument helper, called once per vector.
            for fn in libm:
                calls = (f"@{fn}f(", f"@{fn}(", f"@llvm.{fn}.")
                assert not any(c in body for c in calls), (name, fn)


def _pow_samples(dtype: type, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    top = 80.0 if dtype == np.float32 else 700.0
    xs = [rng.uniform(0, 10, n), np.exp(rng.uniform(-top, top, n)), rng.uniform(0.99, 1.01, n),
          rng.uniform(-5, 5, n), 1 + rng.standard_normal(n) * 1e-9, rng.uniform(0, 2, n)]
    ys = [rng.uniform(-30, 30, n), rng.uniform(-1.2, 1.2, n), rng.uniform(-1e4, 1e4, n),
          np.round(rng.uniform(-20, 20, n)), rng.uniform(-1e9, 1e9, n), rng.uniform(-1e3, 1e3, n)]
    return np.concatenate(xs).astype(dtype), np.concatenate(ys).astype(dtype)


POW_SPECIALS = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 2.5, -2.5, np.inf, -np.inf, np.nan,
                1e-40, 1e38, 1e-300, 1e300, 2.0 ** 60, -(2.0 ** 60)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pow_accuracy_and_special_values(kernels: dict, dtype: type) -> None:
    x, y = _pow_samples(dtype, np.random.default_rng(3), 20_000)
    got = np.empty_like(x)
    tag = "f32" if dtype == np.float32 else "f64"
    kernels[f"t_pow_{tag}"](x.size, x.ctypes.data, y.ctypes.data, got.ctypes.data)
    with np.errstate(all="ignore"):
        want = np.power(x.astype(LD), y.astype(LD)).astype(dtype)
    err = ulp_distance(got, want)
    k = int(np.argmax(err))
    assert err.max() <= MAX_ULP, f"pow({x[k]!r}, {y[k]!r}) = {got[k]!r}, want {want[k]!r}"
    # Every pair of special values exactly as NumPy (C99 Annex F): signs of zeros and infinities,
    # NaN for a negative base with a non-integer exponent, 0**0 == 1, 1**nan == 1, ...
    with np.errstate(over="ignore"):
        sp = np.array(POW_SPECIALS, dtype=np.float64).astype(dtype)
    xx, yy = (a.ravel().copy() for a in np.meshgrid(sp, sp))
    got = np.empty_like(xx)
    kernels[f"t_pow_{tag}"](xx.size, xx.ctypes.data, yy.ctypes.data, got.ctypes.data)
    with np.errstate(all="ignore"):
        want = np.power(xx.astype(LD), yy.astype(LD)).astype(dtype)
    err = ulp_distance(got, want)
    sign_ok = (np.signbit(got) == np.signbit(want)) | np.isnan(want)
    bad = (err > 1) | ~sign_ok
    assert not bad.any(), list(zip(xx[bad], yy[bad], got[bad], want[bad]))[:8]


# -- through graphc.function: native (fused) kernels against the reference ----------------
def _trig_values(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(shape) * 10
    flat = x.reshape(-1)
    spec = [0.0, -0.0, np.inf, -np.inf, np.nan, np.pi / 2, 1e30, -3e9, 1e-30]
    k = min(len(spec), flat.size)
    flat[:k] = spec[:k]
    return x.astype(dtype)


BROADCASTS = [((5, 7), (5, 7)), ((5, 7), (1, 7)), ((5, 1), (1, 7)), ((3, 1, 4), (6, 1)), ((9,), ())]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shapes", BROADCASTS)
def test_trig_and_pow_native_match_reference(dtype: str, shapes: tuple) -> None:
    import graphc
    import graphc.tensor as T

    rng = np.random.default_rng(11)
    sx, sy = shapes
    x = T.tensor(dtype, (None,) * len(sx), name="x")
    y = T.tensor(dtype, (None,) * len(sy), name="y")
    outs = [T.sin(x) * y + T.cos(y), T.tan(x) - y, T.pow(T.abs(x) + 0.5, y), T.pow(x, T.floor(y)),
            T.sin(T.cos(x * y))]
    xv, yv = _trig_values(dtype, sx, rng), _trig_values(dtype, sy, rng) / 3
    native = graphc.function([x, y], outs)(xv, yv)
    ref = graphc.function([x, y], outs, mode="PY")(xv, yv)
    for k, (g, w, o) in enumerate(zip(native, ref, outs)):
        assert g.dtype == w.dtype == np.dtype(dtype) and g.shape == w.shape, k
        assert o.type.shape == (None,) * max(len(sx), len(sy))
        rtol = 2e-6 if dtype == "float32" else 1e-14
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, equal_nan=True, err_msg=f"output {k}")
        num = ~np.isnan(w)
        assert (np.isnan(g) == np.isnan(w)).all() and (np.signbit(g) == np.signbit(w))[num].all(), k


@pytest.mark.parametrize("dtypes", [("float32", "int32"), ("int64", "float64"), ("int32", "int32"),
                                    ("int64", "uint8"), ("float32", "float32")])
def test_pow_dtypes_native_match_reference(dtypes: tuple[str, str]) -> None:
    import graphc
    import graphc.tensor as T

    rng = np.random.default_rng(5)
    x = T.tensor(dtypes[0], (None,), name="x")
    y = T.tensor(dtypes[1], (None,), name="y")
    out = T.pow(x, y)
    xv = rng.integers(-6, 7, 40).astype(dtypes[0])
    yv = rng.integers(0, 9, 40).astype(dtypes[1])
    if np.dtype(dtypes[0]).kind == "f":
        xv[:8] = [0.0, -0.0, -2.0, -1.0, 1.0, np.inf, -np.inf, np.nan]
    got = graphc.function([x, y], out)(xv, yv)
    want = graphc.function([x, y], out, mode="PY")(xv, yv)
    assert got.dtype == want.dtype == np.power(xv, yv).dtype  # integer pow stays integer
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_trig_kernel_has_no_libm_call(dtype: str) -> None:
    import graphc
    import graphc.tensor as T

    x, y = T.tensor(dtype, (None,), name="x"), T.tensor(dtype, (None,), name="y")
    fn = graphc.function([x, y], T.sin(x) * T.cos(y) + T.tan(x * y) + T.pow(T.abs(x), y))
    text = fn.llvm_ir()
    ty = "float" if dtype == "float32" else "double"
    assert any(f"<{w} x {ty}>" in text for w in (2, 4, 8, 16))
    bodies = "".join(_kernel_bodies(text))
    assert "gc_huge_sin" in bodies  # the per-vector check for huge arguments
    for libm_fn in ("sin", "cos", "tan", "pow"):
        name = libm_fn + ("f" if dtype == "float32" else "")
        assert f"@{name}(" not in bodies and f"@llvm.{libm_fn}." not in bodies


def _kernel_bodies(text: str) -> list[str]:
    """The bodies of the kernels proper (not the huge-argument helpers, which call libm)."""
    out = []
    for part in text.split("\ndefine ")[1:]:
        head = part.split("(", 1)[0]
        if "gc_huge_" not in head:
            out.append(part.split("\n}\n")[0])
    return out


def _ulps_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ulp distance of float32 arrays through int64 keys in float order (fast: no NaN here)."""
    def key(v: np.ndarray) -> np.ndarray:
        i = v.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    return np.abs(key(a) - key(b))


def test_tanh_float32_nearly_every_value() -> None:
    """float32 tanh (its own code path) through a compiled function over every 13th float32 of
    [2^-14, 10] (the whole computation range), a sparser sweep of every magnitude (subnormals to
    inf), their negatives (an exact mirror) and the special values. Every float32 was checked
    offline against this float64 reference: at most 2 ulp."""
    import graphc
    import graphc.tensor as T

    v = T.fvector("x")
    fn = graphc.function([v], T.tanh(v))
    assert any(f"<{w} x float>" in fn.llvm_ir() for w in (4, 8, 16))  # the native kernel ran
    lo, hi, top = (np.array([2.0 ** -14, 10.0, np.inf], np.float32).view(np.uint32).astype(np.int64))
    bits = np.concatenate([np.arange(lo, hi, 13), np.arange(0, top + 1, 4099), [top]]).astype(np.uint32)
    x = bits.view(np.float32)
    got = fn(x)
    want = np.tanh(x.astype(np.float64)).astype(np.float32)  # its double rounding: rarely 1 off
    err = _ulps_f32(got, want)
    k = int(np.argmax(err))
    assert err[k] <= MAX_ULP, f"tanh({x[k]!r}) = {got[k]!r}, want {want[k]!r}: {err[k]} ulp"
    assert np.array_equal(fn(-x).view(np.uint32), (-got).view(np.uint32))
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, 9.0, 9.02, -10.0, 3e38],
                  np.float32)
    out = fn(sp)
    np.testing.assert_array_equal(out[:4], [0.0, -0.0, 1.0, -1.0])
    assert list(np.signbit(out[:2])) == [False, True] and np.isnan(out[4])
    np.testing.assert_array_equal(out[5:8], sp[5:8])  # tanh(x) rounds to x
    np.testing.assert_array_equal(out[8:], np.tanh(sp[8:].astype(np.float64)).astype(np.float32))
