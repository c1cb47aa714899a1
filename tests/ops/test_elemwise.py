"""Elementwise ops against NumPy: values, result dtypes, static shapes, broadcasting, gradients."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.reference import NodeRuntimeError
from graphc.gradient import verify_grad

# ---------------------------------------------------------------------------------------
# helpers


def float_result(*dtypes: str) -> str:
    """graphc's rule for float-valued functions: floats stay, small ints -> float32, else float64."""
    d = np.result_type(*dtypes)
    if d.kind == "f":
        return d.name
    return "float32" if d.itemsize <= 2 else "float64"


def same_result(*dtypes: str) -> str:
    return np.result_type(*dtypes).name


def no_bool_result(*dtypes: str) -> str:
    d = np.result_type(*dtypes).name
    return "int8" if d == "bool" else d


def bool_result(*dtypes: str) -> str:
    return "bool"


def sample(rng: np.random.Generator, shape: tuple, dtype: str, lo: float, hi: float) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(int(math.ceil(lo)), int(math.floor(hi)) + 1, size=shape).astype(dtype)
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def symbolic_like(shape: tuple, dtype: str, name: str) -> graphc.graph.basic.Variable:
    """A variable with 1 where the array has length 1 (broadcastable) and None elsewhere."""
    return T.tensor(dtype, shape=tuple(1 if s == 1 else None for s in shape), name=name)


def expected_static(*shapes: tuple) -> tuple:
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    return tuple(1 if all(d == 1 for d in dims) else None for dims in zip(*padded))


def assert_matches(got: np.ndarray, want: np.ndarray, dtype: str) -> None:
    assert got.dtype == np.dtype(dtype), (got.dtype, dtype)
    assert got.shape == want.shape
    want = np.asarray(want).astype(dtype)
    if np.dtype(dtype).kind == "f":
        tol = 2e-6 if dtype == "float64" else 2e-5 if dtype == "float32" else 2e-3
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def _erf_ref(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=["float64"])(x)


# ---------------------------------------------------------------------------------------
# unary ops: name -> (numpy reference, dtype rule, float domain, int domain or None)
UNARY: dict[str, tuple[Callable, Callable, tuple, tuple | None]] = {
    "neg": (np.negative, no_bool_result, (-3, 3), (-5, 5)),
    "abs": (np.abs, no_bool_result, (-3, 3), (-5, 5)),
    "sgn": (np.sign, no_bool_result, (-3, 3), (-5, 5)),
    "exp": (np.exp, float_result, (-3, 3), (-3, 3)),
    "exp2": (np.exp2, float_result, (-3, 3), (-3, 3)),
    "expm1": (np.expm1, float_result, (-3, 3), (-3, 3)),
    "log": (np.log, float_result, (0.1, 5), (1, 9)),
    "log2": (np.log2, float_result, (0.1, 5), (1, 9)),
    "log10": (np.log10, float_result, (0.1, 5), (1, 9)),
    "log1p": (np.log1p, float_result, (-0.9, 5), (0, 9)),
    "sqrt": (np.sqrt, float_result, (0.0, 5), (0, 9)),
    "sqr": (np.square, no_bool_result, (-3, 3), (-9, 9)),
    "sin": (np.sin, float_result, (-3, 3), (-5, 5)),
    "cos": (np.cos, float_result, (-3, 3), (-5, 5)),
    "tan": (np.tan, float_result, (-1.4, 1.4), (-1, 1)),
    "arcsin": (np.arcsin, float_result, (-0.99, 0.99), (-1, 1)),
    "arccos": (np.arccos, float_result, (-0.99, 0.99), (-1, 1)),
    "arctan": (np.arctan, float_result, (-5, 5), (-5, 5)),
    "sinh": (np.sinh, float_result, (-3, 3), (-3, 3)),
    "cosh": (np.cosh, float_result, (-3, 3), (-3, 3)),
    "tanh": (np.tanh, float_result, (-3, 3), (-3, 3)),
    "arctanh": (np.arctanh, float_result, (-0.99, 0.99), (0, 0)),
    "erf": (_erf_ref, float_result, (-2.5, 2.5), (-2, 2)),
    "floor": (np.floor, no_bool_result, (-5, 5), (-5, 5)),
    "ceil": (np.ceil, no_bool_result, (-5, 5), (-5, 5)),
    "round": (np.round, no_bool_result, (-5, 5), (-5, 5)),
    "isnan": (np.isnan, bool_result, (-3, 3), (-5, 5)),
    "isinf": (np.isinf, bool_result, (-3, 3), (-5, 5)),
}
UNARY_SHAPES = [(), (5,), (1, 4), (3, 1), (2, 3, 4)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int8"])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_numpy(name: str, dtype: str, rng: np.random.Generator) -> None:
    ref, rule, fdom, idom = UNARY[name]
    dom = fdom if np.dtype(dtype).kind == "f" else idom
    values = [sample(rng, s, dtype, *dom) for s in UNARY_SHAPES]
    xs = [symbolic_like(s, dtype, f"x{k}") for k, s in enumerate(UNARY_SHAPES)]
    outs = [getattr(T, name)(x) for x in xs]
    want_dtype = rule(dtype)
    for x, out in zip(xs, outs):
        assert out.dtype == want_dtype
        assert out.type.shape == x.type.shape
    got = graphc.function(xs, outs, mode="PY")(*values)
    for g, v in zip(got, values):
        assert_matches(g, ref(v), want_dtype)


def test_special_float_values() -> None:
    x = T.dvector("x")
    v = np.array([np.nan, np.inf, -np.inf, 0.0, -1.5, 2.5, 0.5, 1.5])
    f = graphc.function([x], [T.isnan(x), T.isinf(x), T.round(x), T.sgn(x), T.floor(x), T.ceil(x)],
                        mode="PY")
    got = f(v)
    for g, want in zip(got, [np.isnan(v), np.isinf(v), np.round(v), np.sign(v), np.floor(v), np.ceil(v)]):
        np.testing.assert_array_equal(g, want)
    # Round half to even, like NumPy (not half away from zero).
    np.testing.assert_array_equal(got[2][-4:], [-2.0, 2.0, 0.0, 2.0])


def test_unary_on_bools() -> None:
    b = T.bvector("b")
    c = b > 0
    outs = [T.neg(c), T.sgn(c), T.abs(c), T.sqr(c), c - c, T.invert(c)]
    assert [o.dtype for o in outs] == ["int8"] * 5 + ["bool"]
    v = np.array([1, -1, 3], "int8")
    got = graphc.function([b], outs, mode="PY")(v)
    bv = v > 0
    np.testing.assert_array_equal(got[0], -bv.astype("int8"))
    np.testing.assert_array_equal(got[1], bv.astype("int8"))
    np.testing.assert_array_equal(got[4], np.zeros(3, "int8"))
    np.testing.assert_array_equal(got[5], ~bv)


# ---------------------------------------------------------------------------------------
# binary ops: name -> (numpy reference, dtype rule, a domain, b domain)
BINARY: dict[str, tuple[Callable, Callable, tuple, tuple]] = {
    "add": (np.add, same_result, (-5, 5), (-5, 5)),
    "sub": (np.subtract, no_bool_result, (-5, 5), (-5, 5)),
    "mul": (np.multiply, same_result, (-5, 5), (-5, 5)),
    "true_div": (np.true_divide, float_result, (-5, 5), (1, 5)),
    "int_div": (np.floor_divide, no_bool_result, (-9, 9), (1, 4)),
    "mod": (np.mod, no_bool_result, (-9, 9), (1, 4)),
    "pow": (np.power, no_bool_result, (0.5, 3), (0, 3)),
    "maximum": (np.maximum, same_result, (-5, 5), (-5, 5)),
    "minimum": (np.minimum, same_result, (-5, 5), (-5, 5)),
    "eq": (np.equal, bool_result, (-2, 2), (-2, 2)),
    "neq": (np.not_equal, bool_result, (-2, 2), (-2, 2)),
    "lt": (np.less, bool_result, (-2, 2), (-2, 2)),
    "le": (np.less_equal, bool_result, (-2, 2), (-2, 2)),
    "gt": (np.greater, bool_result, (-2, 2), (-2, 2)),
    "ge": (np.greater_equal, bool_result, (-2, 2), (-2, 2)),
}
BITWISE = {"and_": np.bitwise_and, "or_": np.bitwise_or, "xor": np.bitwise_xor}

# (a shape, b shape): full, scalar, row, column, row x column, rank mismatch
BROADCAST_PATTERNS = [
    ((3, 4), (3, 4)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((1, 4), (3, 4)),
    ((3, 1), (3, 4)),
    ((1, 4), (3, 1)),
    ((4,), (2, 3, 4)),
    ((2, 1, 4), (3, 1)),
]
DTYPE_PAIRS = [
    ("float32", "float32"), ("float64", "float64"), ("float32", "float64"),
    ("int32", "int32"), ("int32", "float32"), ("int8", "int16"), ("int64", "float64"),
]


def _run_binary(fn: Callable, ref: Callable, rule: Callable, da: str, db: str, adom: tuple,
                bdom: tuple, rng: np.random.Generator) -> None:
    ins, vals, outs, wants = [], [], [], []
    want_dtype = rule(da, db)
    for k, (sa, sb) in enumerate(BROADCAST_PATTERNS):
        a, b = symbolic_like(sa, da, f"a{k}"), symbolic_like(sb, db, f"b{k}")
        va, vb = sample(rng, sa, da, *adom), sample(rng, sb, db, *bdom)
        out = fn(a, b)
        assert out.dtype == want_dtype, (out.dtype, want_dtype)
        assert out.type.shape == expected_static(sa, sb)
        ins += [a, b]
        vals += [va, vb]
        outs.append(out)
        with np.errstate(all="ignore"):
            wants.append(np.asarray(ref(va, vb)))
    got = graphc.function(ins, outs, mode="PY")(*vals)
    for g, w in zip(got, wants):
        assert_matches(g, w, want_dtype)


@pytest.mark.parametrize("da,db", DTYPE_PAIRS)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_against_numpy(name: str, da: str, db: str, rng: np.random.Generator) -> None:
    ref, rule, adom, bdom = BINARY[name]
    if name == "pow" and np.dtype(db).kind in "iu" and np.dtype(da).kind in "iu":
        adom = (0, 3)
    _run_binary(getattr(T, name), ref, rule, da, db, adom, bdom, rng)


@pytest.mark.parametrize("da,db", [("bool", "bool"), ("int32", "int32"), ("int8", "int64"),
                                   ("uint8", "uint8"), ("bool", "int16")])
@pytest.mark.parametrize("name", sorted(BITWISE))
def test_bitwise_against_numpy(name: str, da: str, db: str, rng: np.random.Generator) -> None:
    _run_binary(getattr(T, name), BITWISE[name], same_result, da, db, (0, 50), (0, 50), rng)


@pytest.mark.parametrize("dtype", ["bool", "int32", "uint8"])
def test_invert_against_numpy(dtype: str, rng: np.random.Generator) -> None:
    x = T.tensor(dtype, shape=(None, 1), name="x")
    v = sample(rng, (3, 1), dtype, 0, 50)
    out = T.invert(x)
    assert out.dtype == dtype and out.type.shape == (None, 1)
    np.testing.assert_array_equal(graphc.function([x], out, mode="PY")(v), np.invert(v))


@pytest.mark.parametrize("name", ["and_", "or_", "xor", "invert"])
def test_bitwise_rejects_floats(name: str) -> None:
    x = T.fvector("x")
    args = (x,) if name == "invert" else (x, x)
    with pytest.raises(TypeError, match="integer or bool"):
        getattr(T, name)(*args)


def test_variadic_add_and_mul() -> None:
    a, b, c = T.dvector("a"), T.dmatrix("b"), T.dscalar("c")
    s, p = T.add(a, b, c), T.mul(a, b, c)
    assert s.type.shape == (None, None) and p.type.shape == (None, None)
    va, vb, vc = np.arange(3.0), np.ones((2, 3)) * 2, np.float64(1.5)
    got_s, got_p = graphc.function([a, b, c], [s, p], mode="PY")(va, vb, vc)
    np.testing.assert_allclose(got_s, va + vb + vc)
    np.testing.assert_allclose(got_p, va * vb * vc)


def test_mod_and_int_div_follow_python_signs() -> None:
    a, b = T.ivector("a"), T.ivector("b")
    va = np.array([7, -7, 7, -7], "int32")
    vb = np.array([3, 3, -3, -3], "int32")
    q, r = graphc.function([a, b], [a // b, a % b], mode="PY")(va, vb)
    np.testing.assert_array_equal(q, va // vb)
    np.testing.assert_array_equal(r, va % vb)
    np.testing.assert_array_equal(r, [7 % 3, -7 % 3, 7 % -3, -7 % -3])


# ---------------------------------------------------------------------------------------
# static shapes and build-time errors


@pytest.mark.parametrize("sa,sb,want", [
    ((None, 3), (1, 3), (None, 3)),
    ((2, 3), (1, 3), (2, 3)),
    ((2, 1), (1, 3), (2, 3)),
    ((None, 1), (1, None), (None, None)),
    ((None,), (3,), (3,)),
    ((1,), (None,), (None,)),
    ((), (4, None), (4, None)),
    ((5,), (2, 1, 5), (2, 1, 5)),
    ((1, 1), (1,), (1, 1)),
    ((0, 3), (1, 3), (0, 3)),
])
def test_static_shape_inference(sa: tuple, sb: tuple, want: tuple) -> None:
    a, b = T.tensor("float32", shape=sa), T.tensor("float32", shape=sb)
    assert (a + b).type.shape == want
    assert T.maximum(b, a).type.shape == want
    assert (a < b).type.shape == want


@pytest.mark.parametrize("sa,sb", [((2, 3), (4, 3)), ((3,), (4,)), ((2, 3), (3, 2)), ((5,), (2, 4))])
def test_incompatible_static_shapes_raise_at_build_time(sa: tuple, sb: tuple) -> None:
    a, b = T.tensor("float32", shape=sa, name="a"), T.tensor("float32", shape=sb, name="b")
    with pytest.raises(ValueError, match="broadcast"):
        a + b
    with pytest.raises(ValueError, match="broadcast"):
        T.switch(T.tensor("bool", shape=sa), a, b)


def test_runtime_shape_mismatch_names_the_op_and_line() -> None:
    a, b = T.matrix("a"), T.matrix("b")
    out = a * b
    f = graphc.function([a, b], out, mode="PY")
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3), "float32"), np.ones((4, 3), "float32"))
    assert isinstance(info.value, NodeRuntimeError)
    message = str(info.value)
    assert "mul" in message and "[2, 3]" in message and "[4, 3]" in message
    assert "test_elemwise.py" in message


def test_wrong_number_of_inputs() -> None:
    x = T.vector("x")
    with pytest.raises(TypeError, match="takes 1 inputs"):
        T.exp(x, x)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        T.sub(x)


# ---------------------------------------------------------------------------------------
# clip, switch/where, cast, erf


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_clip(dtype: str, rng: np.random.Generator) -> None:
    x = T.tensor(dtype, shape=(None, None), name="x")
    v = sample(rng, (4, 5), dtype, -6, 6)
    out = T.clip(x, -2, 3)
    assert out.dtype == dtype and out.type.shape == (None, None)
    np.testing.assert_array_equal(graphc.function([x], out, mode="PY")(v), np.clip(v, -2, 3))
    # Tensor bounds broadcast too: a per-column lower bound and a scalar upper bound.
    lo, hi = T.tensor(dtype, shape=(1, None), name="lo"), T.tensor(dtype, shape=(), name="hi")
    vlo, vhi = sample(rng, (1, 5), dtype, -3, 0), np.asarray(2, dtype)
    out = T.clip(x, lo, hi)
    assert out.type.shape == (None, None)
    got = graphc.function([x, lo, hi], out, mode="PY")(v, vlo, vhi)
    np.testing.assert_array_equal(got, np.clip(v, vlo, vhi))
    assert x.clip(-1, 1).dtype == dtype


def test_clip_int_tensor_with_float_bounds_is_float() -> None:
    out = T.clip(T.ivector("x"), 0.5, 2.5)
    assert out.dtype == np.result_type("int32", graphc.config.floatX).name


@pytest.mark.parametrize("where", [T.switch, T.where])
def test_switch_broadcasts_and_upcasts(where: Callable, rng: np.random.Generator) -> None:
    c = T.tensor("bool", shape=(None, 1), name="c")
    a = T.fmatrix("a")
    b = T.dvector("b")
    out = where(c, a, b)
    assert out.dtype == "float64" and out.type.shape == (None, None)
    vc = rng.random((3, 1)) < 0.5
    va = rng.standard_normal((3, 4)).astype("float32")
    vb = rng.standard_normal(4)
    got = graphc.function([c, a, b], out, mode="PY")(vc, va, vb)
    np.testing.assert_allclose(got, np.where(vc, va, vb))
    # A non-bool condition means "nonzero", as in NumPy; scalars stay weak.
    x = T.fvector("x")
    out = T.switch(x, x, 0.5)
    assert out.dtype == "float32"
    v = np.array([0.0, 2.0, -1.0], "float32")
    np.testing.assert_array_equal(graphc.function([x], out, mode="PY")(v), np.where(v, v, 0.5))


def test_switch_on_comparison() -> None:
    x = T.dvector("x")
    out = T.switch(x > 0, x, -2 * x)
    v = np.array([-1.0, 0.0, 3.0])
    np.testing.assert_array_equal(graphc.function([x], out, mode="PY")(v), np.where(v > 0, v, -2 * v))


@pytest.mark.parametrize("src", ["float32", "float64", "int32", "int64", "int8", "bool"])
@pytest.mark.parametrize("dst", ["float32", "float64", "int32", "int64", "int8", "uint8", "bool"])
def test_cast(src: str, dst: str, rng: np.random.Generator) -> None:
    x = T.tensor(src, shape=(None, 3), name="x")
    v = sample(rng, (2, 3), src, -3.7, 3.7) if dst != "uint8" else sample(rng, (2, 3), src, 0, 9)
    out = T.cast(x, dst)
    assert out.dtype == dst and out.type.shape == (None, 3)
    if src == dst:
        assert out is x
    got = graphc.function([x], out, mode="PY")(v)
    assert got.dtype == np.dtype(dst)
    np.testing.assert_array_equal(got, v.astype(dst))
    assert x.astype(dst).dtype == dst


def test_cast_to_floatx_and_bad_dtype() -> None:
    assert T.cast(T.ivector(), "floatX").dtype == graphc.config.floatX
    with pytest.raises(TypeError):
        T.cast(T.ivector(), "complex128")


def test_erf_against_math() -> None:
    x = T.dvector("x")
    v = np.linspace(-3, 3, 13)
    got = graphc.function([x], T.erf(x), mode="PY")(v)
    np.testing.assert_allclose(got, [math.erf(t) for t in v], rtol=1e-12, atol=1e-14)
    assert T.erf(T.fvector()).dtype == "float32"
    assert T.erf(T.ivector()).dtype == "float64"


def test_zeros_like_ones_like_fill() -> None:
    x = T.tensor("float32", shape=(None, 3), name="x")
    z, o = T.zeros_like(x), T.ones_like(x, dtype="int32")
    assert z.dtype == "float32" and z.type.shape == (None, 3)
    assert o.dtype == "int32" and o.type.shape == (None, 3)
    f = T.fill(x, 7.0)
    got = graphc.function([x], [z, o, f], mode="PY")(np.ones((2, 3), "float32"))
    np.testing.assert_array_equal(got[0], np.zeros((2, 3), "float32"))
    np.testing.assert_array_equal(got[1], np.ones((2, 3), "int32"))
    np.testing.assert_array_equal(got[2], np.full((2, 3), 7.0, "float32"))


# ---------------------------------------------------------------------------------------
# Python operators on variables


def test_arithmetic_operators(rng: np.random.Generator) -> None:
    x, y = T.dmatrix("x"), T.dvector("y")
    vx = rng.uniform(0.5, 3, (3, 4))
    vy = rng.uniform(0.5, 3, 4)
    exprs = [x + y, x - y, x * y, x / y, x // y, x % y, x**y, -x, abs(x - 1.5),
             2 + x, 2 - x, 2 * x, 2 / x, 7 // x, 7 % x, 2**x, x**2]
    wants = [vx + vy, vx - vy, vx * vy, vx / vy, vx // vy, vx % vy, vx**vy, -vx, np.abs(vx - 1.5),
             2 + vx, 2 - vx, 2 * vx, 2 / vx, 7 // vx, 7 % vx, 2**vx, vx**2]
    got = graphc.function([x, y], exprs, mode="PY")(vx, vy)
    for g, w, e in zip(got, wants, exprs):
        assert e.dtype == "float64" and e.type.shape == (None, None)
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_operators_with_numpy_operands_on_the_left() -> None:
    x = T.fvector("x")
    v = np.array([1.0, 2.0, 3.0], "float32")
    exprs = [np.arange(3.0) + x, np.float32(2) * x, np.ones(3, "float32") - x, np.float64(1) / x]
    assert [e.dtype for e in exprs] == ["float64", "float32", "float32", "float64"]
    assert exprs[0].type.shape == (3,)
    got = graphc.function([x], exprs, mode="PY")(v)
    for g, w in zip(got, [np.arange(3.0) + v, 2 * v, 1 - v, 1 / v.astype("float64")]):
        np.testing.assert_allclose(g, w)


def test_comparison_operators() -> None:
    x, y = T.ivector("x"), T.ivector("y")
    vx, vy = np.array([1, 2, 3], "int32"), np.array([2, 2, 2], "int32")
    exprs = [x < y, x <= y, x > y, x >= y, x < 2, 2 < x, T.eq(x, y), T.neq(x, 2)]
    wants = [vx < vy, vx <= vy, vx > vy, vx >= vy, vx < 2, 2 < vx, vx == vy, vx != 2]
    got = graphc.function([x, y], exprs, mode="PY")(vx, vy)
    for g, w, e in zip(got, wants, exprs):
        assert e.dtype == "bool"
        np.testing.assert_array_equal(g, w)
    # == and != stay identity-based so variables can be dict keys (as in Theano).
    assert (x == x) is True and (x == y) is False
    assert len({x: 1, y: 2}) == 2


def test_logical_operators() -> None:
    a, b = T.bvector("a"), T.bvector("b")
    va, vb = np.array([0, 1, 5, -3], "int8"), np.array([1, 1, 6, 0], "int8")
    exprs = [a & b, a | b, a ^ b, ~a, (a > 0) & (b > 0), (a > 0) | (b > 0), (a > 0) ^ (b > 0),
             ~(a > 0), a & 3, 3 | a]
    wants = [va & vb, va | vb, va ^ vb, ~va, (va > 0) & (vb > 0), (va > 0) | (vb > 0),
             (va > 0) ^ (vb > 0), ~(va > 0), va & 3, 3 | va]
    got = graphc.function([a, b], exprs, mode="PY")(va, vb)
    for g, w, e in zip(got, wants, exprs):
        assert e.dtype == w.dtype.name
        np.testing.assert_array_equal(g, w)


def test_symbolic_variable_has_no_truth_value() -> None:
    x = T.scalar("x")
    with pytest.raises(TypeError, match="ifelse"):
        bool(x > 0)


# ---------------------------------------------------------------------------------------
# gradients: every differentiable elementwise name, at points inside its domain and away
# from kinks and discontinuities (where finite differences are meaningless).
_r = np.random.default_rng(7)


def _u(lo: float, hi: float, *shape: int) -> np.ndarray:
    return _r.uniform(lo, hi, size=shape)


def _away_from_integers(*shape: int) -> np.ndarray:
    return _r.integers(-3, 3, size=shape) + _r.uniform(0.1, 0.4, size=shape)


GRAD_CASES: dict[str, tuple[Callable, list[np.ndarray]]] = {
    "add": (lambda a, b, c: T.add(a, b, c), [_u(-1, 1, 3, 4), _u(-1, 1, 1, 4), _u(-1, 1, 3, 1)]),
    "sub": (lambda a, b: a - b, [_u(-1, 1, 3, 4), _u(-1, 1, 4)]),
    "mul": (lambda a, b, c: T.mul(a, b, c), [_u(-1, 1, 3, 4), _u(-1, 1, 3, 1), _u(-1, 1)]),
    "true_div": (lambda a, b: a / b, [_u(-1, 1, 3, 4), _u(0.5, 2, 1, 4)]),
    "int_div": (lambda a, b: a // b, [_u(3.1, 3.5, 2, 3), _u(2.0, 2.2, 3)]),
    "mod": (lambda a, b: a % b, [_u(3.1, 3.5, 2, 3), _u(2.0, 2.2, 3)]),
    "pow": (lambda a, b: a**b, [_u(0.5, 2, 3, 2), _u(-1.5, 1.5, 3, 2)]),
    "neg": (lambda a: -a, [_u(-1, 1, 2, 3)]),
    "sgn": (lambda a: T.sgn(a) * a, [np.array([-1.5, -0.3, 0.4, 2.0])]),
    "abs": (lambda a: abs(a), [np.array([[-1.5, -0.3], [0.4, 2.0]])]),
    "exp": (T.exp, [_u(-2, 2, 3, 2)]),
    "exp2": (T.exp2, [_u(-2, 2, 3)]),
    "expm1": (T.expm1, [_u(-2, 2, 3)]),
    "log": (T.log, [_u(0.2, 3, 2, 3)]),
    "log2": (T.log2, [_u(0.2, 3, 4)]),
    "log10": (T.log10, [_u(0.2, 3, 4)]),
    "log1p": (T.log1p, [_u(-0.5, 3, 4)]),
    "sqrt": (T.sqrt, [_u(0.2, 3, 2, 3)]),
    "sqr": (T.sqr, [_u(-2, 2, 2, 3)]),
    "sin": (T.sin, [_u(-3, 3, 5)]),
    "cos": (T.cos, [_u(-3, 3, 5)]),
    "tan": (T.tan, [_u(-1.2, 1.2, 5)]),
    "arcsin": (T.arcsin, [_u(-0.9, 0.9, 5)]),
    "arccos": (T.arccos, [_u(-0.9, 0.9, 5)]),
    "arctan": (T.arctan, [_u(-3, 3, 5)]),
    "sinh": (T.sinh, [_u(-2, 2, 5)]),
    "cosh": (T.cosh, [_u(-2, 2, 5)]),
    "tanh": (T.tanh, [_u(-2, 2, 2, 3)]),
    "arctanh": (T.arctanh, [_u(-0.9, 0.9, 5)]),
    "erf": (T.erf, [_u(-2, 2, 5)]),
    "floor": (lambda a: T.floor(a) * a, [_away_from_integers(2, 3)]),
    "ceil": (lambda a: T.ceil(a) * a, [_away_from_integers(2, 3)]),
    "round": (lambda a: T.round(a) + a, [_away_from_integers(2, 3)]),
    "maximum": (T.maximum, [np.array([[0.1, 2.0, -1.0]]), np.array([[1.0], [-0.5]])]),
    "minimum": (T.minimum, [np.array([[0.1, 2.0, -1.0]]), np.array([[1.0], [-0.5]])]),
    "clip": (T.clip, [np.array([-1.3, -0.2, 0.1, 0.7, 1.6]), np.array(-0.5), np.array(1.0)]),
    "switch": (lambda c, a, b: T.switch(c > 0, a, b),
               [np.array([[-1.0, 0.5, 2.0]]), _u(-1, 1, 2, 3), _u(-1, 1, 3)]),
    # float64 -> float32 -> float64; inputs and eps are dyadic so float32 holds x +- eps exactly.
    "cast": (lambda a: T.cast(T.cast(a, "float32"), "float64") * 3.0,
             [np.array([0.125, -0.5, 1.375, 2.0])]),
}
# Extra verify_grad arguments where the defaults cannot work.
GRAD_OPTIONS: dict[str, dict] = {"cast": {"eps": 2.0**-10}}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grad(name: str) -> None:
    fn, inputs = GRAD_CASES[name]
    verify_grad(fn, inputs, **GRAD_OPTIONS.get(name, {}))


def test_grad_of_piecewise_constant_ops_is_zero() -> None:
    x = T.dvector("x")
    outs = [graphc.grad((op(x) * 1.0).sum(), x) for op in (T.floor, T.ceil, T.round, T.sgn)]
    outs.append(graphc.grad((x // 2.0).sum(), x))
    got = graphc.function([x], outs, mode="PY")(np.array([0.3, 1.7, -2.2]))
    for g in got:
        np.testing.assert_array_equal(g, np.zeros(3))


def test_grad_of_maximum_ties_reaches_both_inputs() -> None:
    x, y = T.dvector("x"), T.dvector("y")
    gx, gy = graphc.grad(T.maximum(x, y).sum(), [x, y])
    got_x, got_y = graphc.function([x, y], [gx, gy], mode="PY")(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    np.testing.assert_array_equal(got_x, [1.0, 0.0])
    np.testing.assert_array_equal(got_y, [1.0, 1.0])


def test_grad_keeps_dtype_and_static_shape_of_broadcast_inputs() -> None:
    x = T.tensor("float32", shape=(None, 3), name="x")
    b = T.tensor("float32", shape=(1, 3), name="b")
    s = T.fscalar("s")
    gx, gb, gs = graphc.grad((x * b + s).sum(), [x, b, s])
    assert gx.dtype == gb.dtype == gs.dtype == "float32"
    assert gb.type.shape == (1, 3) and gs.type.shape == ()
    vx = np.arange(6, dtype="float32").reshape(2, 3)
    vb = np.ones((1, 3), "float32")
    got = graphc.function([x, b, s], [gx, gb, gs], mode="PY")(vx, vb, np.float32(1))
    np.testing.assert_allclose(got[1], vx.sum(axis=0, keepdims=True))
    assert float(got[2]) == 6.0


def test_grad_of_switch_condition_and_integer_inputs() -> None:
    x = T.dvector("x")
    i = T.ivector("i")
    # The integer input gets no gradient path (as with Theano's integer inputs: zero).
    gx, gi = graphc.grad(T.switch(x > 0, x * i, x).sum(), [x, i], disconnected_inputs="ignore")
    assert gi.dtype == "float64"
    got = graphc.function([x, i], [gx, gi], mode="PY")(np.array([-1.0, 2.0]), np.array([3, 4], "int32"))
    np.testing.assert_array_equal(got[0], [1.0, 4.0])
    np.testing.assert_array_equal(got[1], [0.0, 0.0])


def test_second_order_gradient() -> None:
    x = T.dscalar("x")
    g = graphc.grad(T.sin(x) * x, x)
    gg = graphc.grad(g, x)
    v = 0.7
    got = graphc.function([x], gg, mode="PY")(v)
    assert got == pytest.approx(2 * math.cos(v) - v * math.sin(v))
