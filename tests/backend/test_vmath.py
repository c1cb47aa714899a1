"""Accuracy of the vectorizable math in IR: max ulp error over a wide range and special values."""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest
from llvmlite import ir

from graphc.backend.llvm import jit, vmath
from graphc.backend.llvm.irutil import F32, F64, I64, PTR

NAMES = ["exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "tanh", "sigmoid", "softplus", "erf"]
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
    compiled = jit.compile_module(module, names)
    proto = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
    return {"module": compiled, **{n: proto(compiled.addresses[n]) for n in names}}


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
    "log2": np.log2, "log10": np.log10, "tanh": np.tanh,
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
    with np.errstate(over="ignore"):
        return np.array(vals, dtype=np.float64).astype(dtype)


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
    body = text[text.index("@t_tanh_f32"):]
    body = body[: body.index("\n}\n")]
    assert "<8 x float>" in body or "<4 x float>" in body
