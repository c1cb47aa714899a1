"""dtype rules: NumPy promotion between tensors, weak Python scalars, floatX, true division."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import graphc
import graphc.tensor as T

ROOT = Path(__file__).resolve().parents[2]
DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "float32", "float64"]


def _sample(dtype: str, shape: tuple = (3,)) -> np.ndarray:
    if dtype == "bool":
        return np.array([True, False, True][: shape[0]])
    return (np.arange(int(np.prod(shape))).reshape(shape) % 5 + 1).astype(dtype)


# ---------------------------------------------------------------------------------------
# tensor with tensor: NumPy's promotion table


@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("db", DTYPES)
def test_tensor_tensor_promotion_follows_numpy(da: str, db: str) -> None:
    a, b = T.tensor(da, shape=(None,), name="a"), T.tensor(db, shape=(None,), name="b")
    want = np.result_type(da, db).name
    exprs = [a + b, a * b, T.maximum(a, b)]
    assert [e.dtype for e in exprs] == [want] * 3
    if want != "bool":
        assert (a - b).dtype == want
    va, vb = _sample(da), _sample(db)
    got = graphc.function([a, b], exprs, mode="PY")(va, vb)
    for g, ref in zip(got, [np.add(va, vb), np.multiply(va, vb), np.maximum(va, vb)]):
        assert g.dtype == np.dtype(want)
        np.testing.assert_array_equal(g, ref)


def test_bool_minus_bool_is_int8() -> None:
    # NumPy refuses bool subtraction; graphc counts bools as int8 there (as Theano).
    a = T.tensor("bool", shape=(None,), name="a")
    assert (a - a).dtype == "int8" and (-a).dtype == "int8"


def test_comparisons_are_bool_whatever_the_inputs() -> None:
    for da in DTYPES:
        assert (T.tensor(da, shape=(None,)) < T.fmatrix()).dtype == "bool"
        assert (T.tensor(da, shape=(None,)) >= 1.5).dtype == "bool"


# ---------------------------------------------------------------------------------------
# Python scalars are weak


@pytest.mark.parametrize("dtype,build,want", [
    ("float32", lambda x: x * 0.1, "float32"),
    ("float32", lambda x: 0.1 * x, "float32"),
    ("float32", lambda x: x + 1, "float32"),
    ("float32", lambda x: x**2, "float32"),
    ("float32", lambda x: 2.0**x, "float32"),
    ("float32", lambda x: 1.0 - x, "float32"),
    ("float32", lambda x: x / 3, "float32"),
    ("float32", lambda x: T.maximum(x, 0.0), "float32"),
    ("float32", lambda x: T.clip(x, 0.0, 1.0), "float32"),
    ("float32", lambda x: T.switch(x > 0, x, 0.5), "float32"),
    ("float32", lambda x: x + True, "float32"),
    ("float16", lambda x: x * 0.1, "float16"),
    ("float64", lambda x: x * 0.1, "float64"),
    ("int32", lambda x: x + 1, "int32"),
    ("int32", lambda x: 1 + x, "int32"),
    ("int32", lambda x: x * 2 - 3, "int32"),
    ("int32", lambda x: x // 2, "int32"),
    ("int32", lambda x: x % 2, "int32"),
    ("int8", lambda x: x + 1, "int8"),
    ("int8", lambda x: x + 300, "int16"),
    ("int8", lambda x: x - 70000, "int32"),
    ("uint8", lambda x: x + 1, "uint8"),
    ("int64", lambda x: x + 1, "int64"),
    ("int32", lambda x: x + 2**40, "int64"),
    ("bool", lambda x: x & True, "bool"),
])
def test_python_scalars_do_not_upcast(dtype: str, build: Callable, want: str) -> None:
    x = T.tensor(dtype, shape=(None,), name="x")
    out = build(x)
    assert out.dtype == want
    value = _sample(dtype)
    got = graphc.function([x], out, mode="PY")(value)
    assert got.dtype == np.dtype(want)


def test_float32_times_python_float_computes_in_float32() -> None:
    x = T.fvector("x")
    v = np.array([1.0, 3.0, 7.0], "float32")
    got = graphc.function([x], x * 0.1, mode="PY")(v)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, v * np.float32(0.1))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "bool"])
def test_int_tensor_times_python_float_is_float(dtype: str) -> None:
    x = T.tensor(dtype, shape=(None,), name="x")
    out = x * 0.5
    assert np.dtype(out.dtype).kind == "f"
    # The Python float becomes floatX, then promotes with the integers as NumPy does.
    expected = np.result_type(dtype, graphc.config.floatX).name if dtype != "bool" else graphc.config.floatX
    assert out.dtype == expected
    v = _sample(dtype)
    np.testing.assert_allclose(graphc.function([x], out, mode="PY")(v), v * 0.5)


def test_numpy_scalars_are_strong() -> None:
    x = T.fvector("x")
    assert (x * np.float64(0.1)).dtype == "float64"
    assert (np.float64(0.1) * x).dtype == "float64"
    assert (x * np.float32(0.1)).dtype == "float32"
    assert (T.ivector() + np.int64(1)).dtype == "int64"
    assert (x + np.ones(3)).dtype == "float64"


def test_constants_alone_take_default_dtypes() -> None:
    assert T.constant(0.5).dtype == graphc.config.floatX
    assert T.constant(3).dtype == "int32"
    assert T.constant(2**40).dtype == "int64"
    assert T.constant(True).dtype == "bool"
    assert T.constant(np.float64(0.5)).dtype == "float64"
    assert T.constant([1.0, 2.0]).dtype == graphc.config.floatX
    assert T.constant(1.5, dtype="float64").dtype == "float64"


# ---------------------------------------------------------------------------------------
# true division and float-valued functions of integers


@pytest.mark.parametrize("dtype,want", [
    ("int8", "float32"), ("uint8", "float32"), ("int16", "float32"),
    ("int32", "float64"), ("int64", "float64"), ("bool", "float32"),
    ("float32", "float32"), ("float64", "float64"),
])
def test_true_div_of_ints_is_float(dtype: str, want: str) -> None:
    a, b = T.tensor(dtype, shape=(None,), name="a"), T.tensor(dtype, shape=(None,), name="b")
    out = a / b
    assert out.dtype == want
    assert T.true_div(a, b).dtype == want
    assert T.exp(a).dtype == want and T.sqrt(a).dtype == want
    if dtype != "bool":
        va = np.array([7, 1, 3], dtype)
        vb = np.array([2, 4, 3], dtype)
        got = graphc.function([a, b], out, mode="PY")(va, vb)
        assert got.dtype == np.dtype(want)
        np.testing.assert_allclose(got, [3.5, 0.25, 1.0])


def test_int_division_by_python_int_is_float_and_floor_division_is_int() -> None:
    x = T.ivector("x")
    assert (x / 2).dtype == "float64"
    assert (x // 2).dtype == "int32"
    got = graphc.function([x], [x / 2, x // 2], mode="PY")(np.array([7, -7], "int32"))
    np.testing.assert_array_equal(got[0], [3.5, -3.5])
    np.testing.assert_array_equal(got[1], [3, -4])


def test_mixed_int_and_float_tensors() -> None:
    assert (T.ivector() * T.fvector()).dtype == "float64"  # NumPy: int32 with float32 -> float64
    assert (T.bvector() * T.fvector()).dtype == "float32"
    assert (T.lvector() + T.dvector()).dtype == "float64"


# ---------------------------------------------------------------------------------------
# floatX


def test_floatx_default_and_runtime_change() -> None:
    old = graphc.config.floatX
    try:
        graphc.config.floatX = "float32"
        assert T.matrix().dtype == "float32" and T.scalar().dtype == "float32"
        assert (T.ivector() * 0.5).dtype == "float64"
        assert (T.bvector() * 0.5).dtype == "float32"
        graphc.config.floatX = "float64"
        assert T.matrix().dtype == "float64" and T.vector().dtype == "float64"
        assert T.constant(0.5).dtype == "float64"
        assert (T.bvector() * 0.5).dtype == "float64"
        # Explicitly typed constructors ignore floatX.
        assert T.fmatrix().dtype == "float32" and T.ivector().dtype == "int32"
    finally:
        graphc.config.floatX = old


def test_floatx_rejects_non_float() -> None:
    with pytest.raises(ValueError, match="floatX"):
        graphc.config.floatX = "int32"


_PROBE = """
import json, numpy as np, graphc, graphc.tensor as T
x = T.matrix('x')
f = graphc.function([x], x * 0.1)
out = f(np.ones((2, 2)))
print(json.dumps({
    "floatX": graphc.config.floatX, "mode": graphc.config.mode,
    "matrix": x.dtype, "x_times_0_1": (x * 0.1).dtype, "result": out.dtype.name,
    "fmatrix": T.fmatrix().dtype, "int8_times_half": (T.bvector() * 0.5).dtype,
    "constant": T.constant(0.5).dtype,
}))
"""


def _run_python(code: str, flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GRAPHC_FLAGS=flags)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_floatx_from_graphc_flags() -> None:
    result = _run_python(_PROBE, "floatX=float64,mode=PY")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info == {
        "floatX": "float64", "mode": "PY", "matrix": "float64", "x_times_0_1": "float64",
        "result": "float64", "fmatrix": "float32", "int8_times_half": "float64",
        "constant": "float64",
    }


@pytest.mark.parametrize("flags,message", [
    ("floatX=float128", "floatX"),
    ("floatX=int32", "floatX"),
    ("flaotX=float64", "unknown setting 'flaotX'"),
    ("floatX", "key=value"),
    ("mode=FASTEST", "mode"),
])
def test_invalid_graphc_flags_fail_clearly_at_import(flags: str, message: str) -> None:
    result = _run_python("import graphc", flags)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError"), result.stderr
    assert message in last
