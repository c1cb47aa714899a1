"""Property-based differential tests: the default mode (FAST_RUN: native LLVM kernels)
computes what mode='PY' (the NumPy reference evaluator) computes.

``test_random_graph_default_mode_matches_py`` builds random small graphs of elementwise,
reduction, indexing and shape ops (some reading and updating a shared variable) over random
shapes (size-0 and size-1 axes included), dtypes and memory layouts, special values
included. tests/test_differential_inputs.py feeds fixed functions wrong inputs.
(tests/rewrite/test_random_graphs.py compares rewritten with unrewritten graphs, both in PY.)

Both use ``DualFunction`` from tests/conftest.py: the native function runs first, then the
PY one, and outputs (dtype, shape, NaN and infinity positions, values within the dtype's
tolerance) or exception types must agree. ``test_random_streams_match_py``: native random
samples reproduce the PY stream. Examples are derandomized, so CI is reproducible;
GRAPHC_DIFF_GRAPHS / GRAPHC_DIFF_CALLS set the numbers of examples (300 / 800) to explore more.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc
import graphc.tensor as T
from graphc.graph.basic import Variable
from tests.conftest import DualFunction, ModeDisagreement

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
DTYPES = FLOATS + INTS + ("bool",)
SIZES = (0, 1, 2, 3, 4, 7, 17)

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


@dataclass
class Item:
    """A variable of the graph being built, with its run-time shape; ``exact`` when both
    modes compute it bit for bit (inputs, integers, and what selection, sign changes and
    shape ops make of them), so discontinuous ops (floor, comparisons, argmax, casts to
    integers) may follow it without a few ulp of difference becoming a different answer."""

    var: Variable
    shape: tuple[int, ...]
    exact: bool


def _is_float(item: Item) -> bool:
    return item.var.dtype in FLOATS


# -- the ops a random graph is made of -----------------------------------------------------
# Continuous unary ops (any numeric input; integers are upcast by the op's dtype rule).
CONTINUOUS = {
    "exp": T.exp, "expm1": T.expm1, "log": T.log, "log1p": T.log1p, "log2": T.log2,
    "sqrt": T.sqrt, "tanh": T.tanh, "sin": T.sin, "cos": T.cos, "tan": T.tan,
    "arctan": T.arctan, "arcsin": T.arcsin, "arctanh": T.arctanh, "cosh": T.cosh,
    "erf": T.erf, "sigmoid": T.nnet.sigmoid, "softplus": T.nnet.softplus, "sqr": T.sqr,
    "exp2": T.exp2, "relu": T.nnet.relu,
}
# Unary ops that keep a value exact.
EXACT_UNARY = {"neg": T.neg, "abs": T.abs}
# Discontinuous unary ops: only on exact values.
DISCRETE_UNARY = {"floor": T.floor, "ceil": T.ceil, "round": T.round, "sgn": T.sgn,
                  "isnan": T.isnan, "isinf": T.isinf}
CONTINUOUS_BINARY = {"add": T.add, "sub": T.sub, "mul": T.mul, "true_div": T.true_div,
                     "pow": T.pow}
EXACT_BINARY = {"maximum": T.maximum, "minimum": T.minimum}
DISCRETE_BINARY = {"int_div": T.int_div, "mod": T.mod, "eq": T.eq, "neq": T.neq, "lt": T.lt,
                   "gt": T.gt, "le": T.le, "ge": T.ge}
BITWISE = {"and_": T.and_, "or_": T.or_, "xor": T.xor}
REDUCTIONS = {"sum": T.sum, "prod": T.prod, "mean": T.mean, "max": T.max, "min": T.min, "var": T.var,
              "std": T.std, "any": T.any, "all": T.all}


def _pick(data: st.DataObject, items: list[Item], pred: Callable[[Item], bool] = lambda _: True,
          avoid: Item | None = None) -> Item | None:
    """An item satisfying ``pred``, preferably a recent one (deeper graphs) other than ``avoid``."""
    pool = [i for i in reversed(items) if pred(i)]
    if len(pool) > 1 and avoid in pool:
        pool.remove(avoid)
    return data.draw(st.sampled_from(pool)) if pool else None


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _axes(data: st.DataObject, ndim: int) -> Any:
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return None
    kind = data.draw(st.sampled_from(["none", "one", "several"]))
    if kind == "none":
        return None
    if kind == "one":
        return data.draw(st.integers(-ndim, ndim - 1))
    return tuple(sorted(data.draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim))))


def _reduced_shape(shape: tuple[int, ...], axis: Any, keepdims: bool) -> tuple[int, ...]:
    return np.sum(np.zeros(shape), axis=axis, keepdims=keepdims).shape


def _step(data: st.DataObject, pool: list[Item]) -> Item | None:
    """One random op applied to items of ``pool``; None when the draw does not fit."""
    kind = data.draw(st.sampled_from(
        ["unary", "unary", "binary", "binary", "discrete", "reduce", "reduce", "argmax", "cast",
         "switch", "softmax", "dimshuffle", "transpose", "reshape", "flatten", "slice", "concatenate",
         "dot", "take", "set_inc"]))
    a = _pick(data, pool)
    if kind in ("take", "set_inc"):
        return _indexing(data, pool, a, kind == "take")
    if kind == "softmax":
        if a.var.ndim == 0 or not _is_float(a):
            return None
        fn = data.draw(st.sampled_from([T.nnet.softmax, T.nnet.log_softmax]))
        return Item(fn(a.var, axis=data.draw(st.integers(-a.var.ndim, a.var.ndim - 1))), a.shape, False)
    if kind == "unary":
        name = data.draw(st.sampled_from(sorted(CONTINUOUS) + sorted(EXACT_UNARY)))
        if a.var.dtype == "bool" and name in EXACT_UNARY:
            return None
        if name in EXACT_UNARY:
            return Item(EXACT_UNARY[name](a.var), a.shape, a.exact)
        out = CONTINUOUS[name](a.var)
        return Item(out, a.shape, out.dtype not in FLOATS)
    if kind in ("binary", "discrete"):
        if kind == "binary":
            table = {**CONTINUOUS_BINARY, **EXACT_BINARY}
        else:
            table = {**DISCRETE_BINARY, **BITWISE, **DISCRETE_UNARY}
        name = data.draw(st.sampled_from(sorted(table)))
        if name in DISCRETE_UNARY:
            if _is_float(a) and not a.exact:
                return None
            return Item(table[name](a.var), a.shape, True)
        discrete = name in DISCRETE_BINARY or name in BITWISE
        b = _pick(data, pool, lambda i: _broadcast(a.shape, i.shape) is not None
                  and (not discrete or i.exact or not _is_float(i)), avoid=a)
        if b is None or (discrete and _is_float(a) and not a.exact):
            return None
        if name in BITWISE and (_is_float(a) or _is_float(b)):
            return None
        out = table[name](a.var, b.var)
        exact = (a.exact and b.exact and name in EXACT_BINARY) or discrete or out.dtype not in FLOATS
        return Item(out, _broadcast(a.shape, b.shape), exact)
    if kind == "reduce":
        name = data.draw(st.sampled_from(sorted(REDUCTIONS)))
        axis, keepdims = _axes(data, a.var.ndim), data.draw(st.booleans())
        out = REDUCTIONS[name](a.var, axis=axis, keepdims=keepdims)
        exact = out.dtype not in FLOATS or (name in ("max", "min") and a.exact)
        if name in ("any", "all") and _is_float(a) and not a.exact:
            return None
        return Item(out, _reduced_shape(a.shape, axis, keepdims), exact)
    if kind == "argmax":
        if _is_float(a) and not a.exact:
            return None
        axis = None if a.var.ndim == 0 else data.draw(st.one_of(st.none(), st.integers(0, a.var.ndim - 1)))
        keepdims = data.draw(st.booleans())
        fn = data.draw(st.sampled_from([T.argmax, T.argmin]))
        return Item(fn(a.var, axis=axis, keepdims=keepdims), _reduced_shape(a.shape, axis, keepdims), True)
    if kind == "cast":
        dtype = data.draw(st.sampled_from(DTYPES))
        if _is_float(a) and not a.exact and dtype not in FLOATS:
            return None
        return Item(T.cast(a.var, dtype), a.shape, a.exact or dtype not in FLOATS)
    if kind == "switch":
        c = _pick(data, pool, lambda i: i.exact)
        b = _pick(data, pool, lambda i: _broadcast(a.shape, i.shape) is not None, avoid=a)
        if c is None or b is None or _broadcast(a.shape, b.shape, c.shape) is None:
            return None
        cond = c.var if c.var.dtype == "bool" else c.var > 0
        return Item(T.switch(cond, a.var, b.var), _broadcast(a.shape, b.shape, c.shape),
                    a.exact and b.exact)
    if kind == "dimshuffle":
        if a.var.ndim >= 4:
            return None
        order: list[Any] = list(data.draw(st.permutations(range(a.var.ndim))))
        order.insert(data.draw(st.integers(0, len(order))), "x")
        shape = tuple(1 if o == "x" else a.shape[o] for o in order)
        return Item(T.dimshuffle(a.var, *order), shape, a.exact)
    if kind == "transpose":
        return Item(T.transpose(a.var), a.shape[::-1], a.exact)
    if kind == "reshape":
        shape = list(a.shape)
        how = data.draw(st.sampled_from(["all", "merge", "insert1"]))
        if how == "all":
            shape = [int(np.prod(shape))]
        elif how == "merge" and len(shape) >= 2:
            k = data.draw(st.integers(0, len(shape) - 2))
            shape[k:k + 2] = [shape[k] * shape[k + 1]]
        elif len(shape) < 4:
            shape.insert(data.draw(st.integers(0, len(shape))), 1)
        return Item(T.reshape(a.var, tuple(shape)), tuple(shape), a.exact)
    if kind == "flatten":
        if a.var.ndim == 0:
            return None
        nd = data.draw(st.integers(1, a.var.ndim))
        shape = a.shape[:nd - 1] + (int(np.prod(a.shape[nd - 1:])),)
        return Item(T.flatten(a.var, nd), shape, a.exact)
    if kind == "slice":
        if a.var.ndim == 0:
            return None
        index: list[Any] = []
        for n in a.shape[:data.draw(st.integers(1, a.var.ndim))]:
            if n > 0 and data.draw(st.integers(0, 3)) == 0:
                index.append(data.draw(st.integers(-n, n - 1)))
            else:
                bound = st.one_of(st.none(), st.integers(-4, 4))
                index.append(slice(data.draw(bound), data.draw(bound),
                                   data.draw(st.sampled_from([None, 1, 2, -1, -2]))))
        shape = np.zeros(a.shape)[tuple(index)].shape
        return Item(a.var[tuple(index)], shape, a.exact)
    if kind == "concatenate":
        if a.var.ndim == 0:
            return None
        axis = data.draw(st.integers(0, a.var.ndim - 1))
        b = _pick(data, pool, lambda i: i.var.ndim == a.var.ndim
                  and all(x == y for k, (x, y) in enumerate(zip(a.shape, i.shape)) if k != axis))
        shape = list(a.shape)
        shape[axis] += b.shape[axis]
        return Item(T.concatenate([a.var, b.var], axis=axis), tuple(shape),
                    a.exact and b.exact)
    # dot: a matrix or vector with a compatible partner, else with its own transpose
    if a.var.ndim not in (1, 2) or a.var.dtype == "bool":
        return None
    k = a.shape[-1]
    b = _pick(data, pool, lambda i: i.var.ndim in (1, 2) and i.shape[0] == k and i.var.dtype != "bool")
    if b is None:
        return Item(T.dot(a.var, T.transpose(a.var)), a.shape[:-1] * 2, a.var.dtype not in FLOATS)
    return Item(T.dot(a.var, b.var), a.shape[:-1] + b.shape[1:], a.var.dtype not in FLOATS
                and b.var.dtype not in FLOATS)


def _indexing(data: st.DataObject, pool: list[Item], a: Item, take: bool) -> Item | None:
    """``a[idx]`` (integer array, repeats and negative indices), or ``set_subtensor`` /
    ``inc_subtensor`` of ``a[idx]`` or of a slice of ``a`` with a broadcast item."""
    if a.var.ndim == 0 or a.shape[0] == 0:
        return None
    n = a.shape[0]
    idx: Any = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=5)), dtype="int64")
    if take:
        return Item(a.var[idx], (len(idx),) + a.shape[1:], a.exact)
    if data.draw(st.booleans()):
        bound = st.one_of(st.none(), st.integers(-4, 4))
        idx = slice(data.draw(bound), data.draw(bound), data.draw(st.sampled_from([None, 2, -1])))
    sub = np.zeros(a.shape)[idx].shape
    b = _pick(data, pool, lambda i: _broadcast(i.shape, sub) == sub and i.var.ndim <= len(sub), avoid=a)
    if b is None:
        return None
    fn = data.draw(st.sampled_from([T.set_subtensor, T.inc_subtensor]))
    out = fn(a.var[idx], b.var)
    exact = a.exact and b.exact and (fn is T.set_subtensor or out.dtype not in FLOATS)
    return Item(out, a.shape, exact)


LAYOUTS = ["C", "F", "reversed", "strided", "transposed", "broadcast", "unaligned", "readonly"]


def _laid_out(data: st.DataObject, value: np.ndarray) -> np.ndarray:
    layout = data.draw(st.sampled_from(LAYOUTS))
    if value.ndim == 0 or layout == "C":
        return value
    if layout == "F":
        return np.asfortranarray(value)
    if layout == "reversed":
        axis = data.draw(st.integers(0, value.ndim - 1))
        return np.flip(np.flip(value, axis).copy(), axis)
    if layout == "strided":
        bigger = np.repeat(value, 2, axis=-1)
        return bigger[..., ::2]
    if layout == "transposed":
        return np.ascontiguousarray(value.T).T
    if layout == "broadcast":
        return np.broadcast_to(value[..., :1], value.shape)
    if layout == "unaligned":
        raw = np.zeros(value.nbytes + 1, np.uint8)
        out = raw[1:].view(value.dtype).reshape(value.shape)
        out[...] = value
        return out
    value = value.copy()
    value.flags.writeable = False
    return value


# -- input values ----------------------------------------------------------------------------
FLOAT_SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, 1.5, 2.5, -0.5, 1e-30, 1e30, 88.8, 710.0]
INT_SPECIALS = [0, -1, 1, 7, -8]


def _values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...], specials: bool) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        v = rng.integers(-6, 7, size=shape)
        pool = INT_SPECIALS + [np.iinfo(dtype).min, np.iinfo(dtype).max]
    else:
        v = rng.uniform(-3.0, 3.0, size=shape)
        pool = FLOAT_SPECIALS
    if specials and v.size:
        mask = rng.random(shape) < 0.3
        v = np.where(mask, np.asarray(pool, dtype="float64" if dtype in FLOATS else dtype)[
            rng.integers(len(pool), size=shape)], v)
    with np.errstate(all="ignore"):
        return np.asarray(v).astype(dtype)


def _inputs(data: st.DataObject) -> tuple[list[Item], tuple[int, ...]]:
    dims = data.draw(st.lists(st.sampled_from(SIZES), min_size=3, max_size=3))
    items = []
    for k in range(data.draw(st.integers(1, 3))):
        dtype = data.draw(st.sampled_from(DTYPES))
        ndim = data.draw(st.integers(0, 3))
        shape = tuple(1 if data.draw(st.integers(0, 3)) == 0 else d for d in dims[3 - ndim:])
        items.append(Item(T.tensor(dtype, (None,) * ndim, f"in{k}"), shape, True))
    return items, dims


def _compare(inputs: list[Variable], outputs: list[Variable], values: list[np.ndarray],
             loose: float, rtol: float | None = None, updates: list | None = None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        py_fn = graphc.function(inputs, outputs, updates=updates, mode="PY", on_unused_input="ignore")
        native_fn = graphc.function(inputs, outputs, updates=updates, mode="FAST_RUN",
                                    on_unused_input="ignore")
        dual = DualFunction(py_fn, native_fn, loose=loose, rtol=rtol)
        _calls(dual, values)


def _calls(dual: DualFunction, values: list[Any]) -> None:
    """Call twice with ``values`` (the second call records a plan for their shapes), then
    with other values of the same shapes (the plan replays), comparing every call."""
    for args in (values, values, [_other(v) for v in values]):
        try:
            dual(*args)
        except ModeDisagreement:
            raise
        except Exception:  # noqa: S110 -- both modes raised the same kind of error
            pass


def _other(value: Any) -> Any:
    """Other values of the same dtype and shape (C-contiguous, as plans want them)."""
    if not isinstance(value, np.ndarray):
        return value
    return np.ascontiguousarray(np.flip(value))


@settings(max_examples=int(os.environ.get("GRAPHC_DIFF_GRAPHS", 300)), **SETTINGS)
@given(st.data())
def test_random_graph_default_mode_matches_py(data: st.DataObject) -> None:
    leaves, dims = _inputs(data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    specials = data.draw(st.booleans())
    state = None  # a shared variable the graph reads and updates (plans update in place)
    if data.draw(st.booleans()):
        ndim = data.draw(st.integers(0, 3))
        shape = tuple(dims[3 - ndim:])
        dtype = data.draw(st.sampled_from(FLOATS))
        w = graphc.shared(_values(rng, dtype, shape, False), name="w")
        state = Item(w, shape, True)
    pool = list(leaves) + ([state] if state else [])
    for _ in range(data.draw(st.integers(2, 8))):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                item = _step(data, pool)
        except (TypeError, ValueError):  # an op refusing these dtypes or static shapes
            item = None
        if item is not None:
            static = item.var.type.shape
            assert len(static) == len(item.shape)
            assert all(t is None or t == s for s, t in zip(item.shape, static)), (static, item.shape)
            pool.append(item)
    built = pool[len(leaves) + (state is not None):]
    if not built:
        return
    outputs = [built[-1].var]
    if len(built) > 1 and data.draw(st.booleans()):
        outputs.append(data.draw(st.sampled_from(built[:-1])).var)
    updates = []
    if state is not None:
        w = state.var
        fits = [i for i in built if _broadcast(i.shape, state.shape) == state.shape]
        new = data.draw(st.sampled_from(fits)).var if fits else T.sqr(w)
        updates = [(w, T.cast(w * 0.5 + new, w.dtype))]
    values = [_laid_out(data, _values(rng, i.var.dtype, i.shape, specials)) for i in leaves]
    # A few ulp of difference per transcendental op can grow along a chain of them, and a
    # float64 result is only as precise as the float32 values it was computed from.
    rtol = 2e-5 if any(i.var.dtype == "float32" for i in pool) else None
    _compare([i.var for i in leaves], outputs, values, loose=30.0, rtol=rtol, updates=updates)


# -- random streams ------------------------------------------------------------------------------
@settings(max_examples=int(os.environ.get("GRAPHC_DIFF_RANDOM", 40)), **SETTINGS)
@given(st.data())
def test_random_streams_match_py(data: st.DataObject) -> None:
    """Native samples reproduce the PY stream, call after call (the state updates too)."""
    srng = T.random.RandomStream(data.draw(st.integers(0, 2**31)))
    size = tuple(data.draw(st.lists(st.sampled_from(SIZES), max_size=3)))
    dist = data.draw(st.sampled_from(["uniform", "normal", "binomial"]))
    dtype = data.draw(st.sampled_from(FLOATS))
    x = T.tensor(dtype, (None,) * len(size), "x")
    if dist == "uniform":
        sample = srng.uniform(size, low=-2.0, high=data.draw(st.sampled_from([1.0, 3.5])), dtype=dtype)
    elif dist == "normal":
        sample = srng.normal(size, avg=x if data.draw(st.booleans()) else 1.0,
                             std=data.draw(st.sampled_from([0.5, 2.0])), dtype=dtype)
    else:
        sample = srng.binomial(size, n=data.draw(st.sampled_from([1, 5])),
                               p=data.draw(st.sampled_from([0.0, 0.3, 1.0])))
    outputs = [sample, sample * 2 + x if sample.dtype in FLOATS else sample.sum()]
    value = np.random.default_rng(0).normal(size=size).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        py_fn = graphc.function([x], outputs, mode="PY", on_unused_input="ignore")
        native_fn = graphc.function([x], outputs, mode="FAST_RUN", on_unused_input="ignore")
    _calls(DualFunction(py_fn, native_fn, loose=10.0), [value])


# -- the harness itself --------------------------------------------------------------------------
def test_dual_function_reports_every_kind_of_disagreement() -> None:
    x = T.dvector("x")
    w = graphc.shared(np.zeros(2), name="w")
    py_fn = graphc.function([x], x * 2.0, updates=[(w, w + x)], mode="PY")

    def fake(result: Callable[[np.ndarray], Any], update: Callable[[np.ndarray], Any] = lambda v: v) -> Any:
        def run(v: np.ndarray) -> Any:
            w.container.value = w.container.value + update(v)
            return result(v)
        return run

    v = np.array([1.0, np.nan])
    assert np.array_equal(DualFunction(py_fn, fake(lambda v: v * 2.0))(v), v * 2, equal_nan=True)
    bad = {
        "values differ": fake(lambda v: v * 2.0 + 1e-3),
        "NaN positions": fake(lambda v: np.nan_to_num(v * 2.0)),
        "float32": fake(lambda v: (v * 2.0).astype("float32")),
        "shared variable w": fake(lambda v: v * 2.0, lambda v: v + 1.0),
        "FAST_RUN raises": fake(lambda v: 1 / 0),
        "in place": fake(lambda v: np.multiply(v, 2.0, out=v)),
    }
    for message, native in bad.items():
        w.set_value(np.zeros(2))
        with pytest.raises(ModeDisagreement, match=message):
            DualFunction(py_fn, native)(v.copy())
    # Both raise: the same kind of error passes PY's through, another kind is a disagreement.
    def type_error(v: np.ndarray) -> Any:
        raise TypeError("native")

    with pytest.raises(TypeError, match="input 'x'"):
        DualFunction(py_fn, fake(type_error))(np.zeros((2, 2)))
    mixed = graphc.function([x], x[T.constant(5)], mode="PY")
    with pytest.raises(ModeDisagreement, match="PY raises"):
        DualFunction(mixed, fake(lambda v: (_ for _ in ()).throw(KeyError("k"))))(v)
