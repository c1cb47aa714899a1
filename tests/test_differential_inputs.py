"""Wrong inputs to compiled functions: the default mode (FAST_RUN) agrees with mode='PY' or
raises the same kind of exception, and never crashes the process.

Fixed functions (elementwise, integer division, reductions, shape ops, indexing with
symbolic indices, labels, dot) are compiled once; hypothesis draws their inputs: the wrong
dtype, rank or kind (Python objects), shapes that do not fit together, empty arrays,
Fortran order, reversed, strided, broadcast (zero-stride), unaligned and read-only arrays,
NaN/inf/huge values, out-of-range and extreme indices, inputs that view each other. Each
example calls three times (the second call records a plan, the third replays it with
other values), and outputs of an earlier call must survive later calls (buffer reuse).
See tests/test_differential.py for the harness (``DualFunction``) and the random graphs.
"""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc
import graphc.tensor as T
from graphc.graph.basic import Variable
from tests.conftest import DualFunction
from tests.test_differential import SETTINGS, SIZES, _calls, _laid_out


def _fixed_graphs() -> dict[str, tuple[list[Variable], list[Variable]]]:
    x, y, z = T.fmatrix("x"), T.fvector("y"), T.fscalar("z")
    d, e = T.dmatrix("d"), T.dmatrix("e")
    a, i, j = T.dvector("a"), T.ivector("i"), T.ivector("j")
    t = T.ftensor3("t")
    k, m = T.iscalar("k"), T.iscalar("m")
    idx, lab = T.lvector("idx"), T.ivector("lab")
    A, B, v = T.fmatrix("A"), T.fmatrix("B"), T.fvector("v")
    sm = T.nnet.softmax(x)
    return {
        "elemwise": ([x, y, z], [T.exp(x) * y + T.tanh(z), T.log(abs(x)) - y, T.sqrt(x) * 2.0,
                                 T.nnet.sigmoid(x) + z]),
        "integers": ([i, j, a], [T.int_div(i, j), T.mod(i, j), i * j + 3, T.cast(a, "int32") + i,
                                 T.switch(a > 0, a, i), T.pow(i, 2)]),
        "reduce": ([d], [d.sum(axis=0), d.max(axis=1), T.argmax(d, axis=1), d.mean(), d.prod(axis=0),
                         d.min(), T.argmin(d)]),
        "reduce3d": ([t], [t.sum(axis=(0, 2)), t.max(axis=-1, keepdims=True), T.argmax(t, axis=(1, 2)),
                           T.exp(t).sum(axis=1)]),
        "shape": ([d, e, k, m], [d.T, T.reshape(d, (k, m)), T.flatten(d), d[1:, ::-1],
                                 T.concatenate([d, e], axis=0), d.dimshuffle(1, "x", 0) + 1.0]),
        "index": ([d, k, m, idx, a], [d[k], d[k:m], d[:, m], d[idx], d[k, m],
                                      T.set_subtensor(d[idx], 0.0), T.inc_subtensor(d[idx], a)]),
        "labels": ([x, lab], [sm, T.nnet.categorical_crossentropy(sm, lab),
                              x[T.arange(lab.shape[0]), lab]]),
        "dot": ([A, B, v], [T.dot(A, B), T.dot(A, v), T.dot(B, B.T) + 1.0]),
    }


FIXED = ("dot", "elemwise", "index", "integers", "labels", "reduce", "reduce3d", "shape")


@functools.cache
def _fixed_function(name: str) -> DualFunction:
    inputs, outputs = _fixed_graphs()[name]
    py_fn = graphc.function(inputs, outputs, mode="PY")
    return DualFunction(py_fn, graphc.function(inputs, outputs, mode="FAST_RUN"))


WRONG_DTYPES = ["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "uint64", "bool",
                "complex64", ">f8", ">i4"]
def _wrong_value(data: st.DataObject, var: Variable, wrong_type: bool, dims: list[int],
                 reduced: bool) -> Any:
    """A value for ``var``: of the wrong kind, dtype or rank when ``wrong_type``, else of its
    dtype and rank with a shape drawn mostly from ``dims`` (so inputs often fit together),
    any layout, and special values. Huge finite values only when the function does not
    ``reduce`` (sum) them: in sums their cancellation, or float32 partial sums overflowing
    (native float32 sums accumulate in float64), depend on the order of summation."""
    kind = data.draw(st.sampled_from(["array", "array", "python", "none"])) if wrong_type else "array"
    if kind == "none":
        return data.draw(st.sampled_from([None, "abc", [1, [2]], object()]))
    if kind == "python":
        return data.draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**40, 2**40),
                                   st.booleans(), st.lists(st.floats(-5, 5), max_size=4)))
    dtype = data.draw(st.sampled_from(WRONG_DTYPES)) if wrong_type else var.dtype
    ndim = data.draw(st.integers(0, 3)) if wrong_type else var.ndim
    shape = tuple(dims[-ndim + k] if data.draw(st.integers(0, 4)) else data.draw(st.sampled_from(SIZES))
                  for k in range(ndim))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        pool = np.array([0, 1, 2, 3, -1, -2, -5, 100, info.min, info.max], dtype="float64")
        values = np.where(rng.random(shape) < 0.8, rng.integers(-4, 8, size=shape),
                          pool[rng.integers(len(pool), size=shape)])
        with np.errstate(all="ignore"):
            value = np.clip(values, info.min, info.max).astype(dt)
    elif dt.kind == "b":
        value = rng.random(shape) < 0.5
    else:
        pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40] + ([] if reduced else [
            1e300, -1e300, 89.0, -104.0]))
        with np.errstate(all="ignore"):
            value = np.where(rng.random(shape) < 0.7, rng.normal(size=shape) * 3,
                             pool[rng.integers(len(pool), size=shape)]).astype(dt)
    return _laid_out(data, np.asarray(value))


@settings(max_examples=int(os.environ.get("GRAPHC_DIFF_CALLS", 800)), **SETTINGS)
@given(st.data())
def test_wrong_inputs_agree_or_raise_alike(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FIXED))
    fn = _fixed_function(name)
    reduced = name in ("dot", "labels", "reduce", "reduce3d")
    dims = data.draw(st.lists(st.sampled_from(SIZES), min_size=3, max_size=3))
    # Mostly inputs of the right dtype and rank, so that the call reaches the kernels.
    wrong = data.draw(st.integers(-3, len(fn.py_fn.ins) - 1))
    values = [_wrong_value(data, i.variable, k == wrong, dims, reduced)
              for k, i in enumerate(fn.py_fn.ins)]
    if data.draw(st.integers(0, 3)) == 0:
        _alias(data, fn, values)
    # Outputs of an earlier call must not change when a later call reuses buffers.
    earlier = _EARLIER.pop(name, None)
    object.__setattr__(fn, "last_native", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _calls(fn, values)
    if fn.last_native is not None:
        _EARLIER[name] = (fn.last_native, _copies(fn.last_native))
    if earlier is not None:
        for before, copy in zip(*earlier):
            assert np.array_equal(before, copy, equal_nan=True), "a later call overwrote an output"


_EARLIER: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}


def _copies(outputs: list[np.ndarray]) -> list[np.ndarray]:
    return [np.array(o, copy=True) for o in outputs]


def _alias(data: st.DataObject, fn: DualFunction, values: list[Any]) -> None:
    """Make one input a view of (or the very array of) another input."""
    arrays = [k for k, v in enumerate(values) if isinstance(v, np.ndarray) and v.ndim]
    if not arrays:
        return
    src = data.draw(st.sampled_from(arrays))
    for k, inp in enumerate(fn.py_fn.ins):
        if k != src and inp.variable.dtype == values[src].dtype:
            if inp.variable.ndim == values[src].ndim:
                # A view, not the array itself: see test_same_array_for_two_inputs below.
                values[k] = values[src][...]
            elif inp.variable.ndim == values[src].ndim - 1 and len(values[src]):
                values[k] = values[src][0]
            else:
                continue
            return


def test_same_array_for_two_inputs() -> None:
    x, y = T.dvector("x"), T.dvector("y")
    fn = graphc.function([x, y], x - y)
    b = np.array([2.0, 1.0])
    fn(b, b)
    fn(b, b)  # recorded: the plan for these shapes is built from this call
    np.testing.assert_array_equal(fn(np.array([5.0, 5.0]), np.array([1.0, 2.0])), [4.0, 3.0])
    # and the other way round: a plan recorded from two arrays, then called with one twice
    c = np.array([7.0, 8.0])
    fn(c, b)
    fn(c, b)
    np.testing.assert_array_equal(fn(c, c), [0.0, 0.0])
    np.testing.assert_array_equal(fn(c, b), [5.0, 7.0])
