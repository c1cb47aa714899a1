"""The shared strided driver (graphc.backend.llvm.strided_driver): every elementwise kernel's
path for arrays that are not all C-contiguous with the output's shape."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import graphc
import graphc.tensor as T
from graphc.backend.llvm import strided_driver
from graphc.compile.mode import Mode

NATIVE = Mode("llvm", "none")
REF = Mode("py", "none")


def run_both(build, *arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs = [T.tensor(a.dtype.name, (None,) * a.ndim) for a in arrays]
    out = build(*xs)
    native = graphc.function(xs, out, mode=NATIVE)
    ref = graphc.function(xs, out, mode=REF)
    return native(*arrays), ref(*arrays)


def same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind == "f":  # the same kernel math either way; exp/tanh/sqrt within a few ulp
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=0)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5])
def test_every_axis_broadcast_and_transposed(ndim: int) -> None:
    rng = np.random.default_rng(ndim)
    shape = tuple(range(2, 2 + ndim))
    full = rng.standard_normal(shape[::-1]).T  # transposed: no unit stride anywhere but the last axis of .T
    subsets = itertools.chain.from_iterable(itertools.combinations(range(ndim), k) for k in range(ndim + 1))
    for axes in subsets:
        small = rng.standard_normal(tuple(1 if d in axes else n for d, n in enumerate(shape)))
        same(*run_both(lambda x, y: x * y + 1.0, full, small))


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32", "int64", "bool"])
def test_every_element_size_through_buffers(dtype: str) -> None:
    """Item sizes 1, 2, 4 and 8 through the copy helper: gathers (a transposed input), fills
    (a column broadcast along the innermost axis) and scatters of a strided output."""
    rng = np.random.default_rng(0)
    a = (rng.integers(-50, 50, (300, 7)) if dtype != "bool" else rng.random((300, 7)) < 0.5).astype(dtype)
    col = a[:1].T.copy()  # (7, 1): broadcast along the innermost axis of a.T
    if dtype == "bool":
        same(*run_both(lambda x, y: x ^ y, a.T, col))
    else:
        same(*run_both(lambda x, y: x * y - x, a.T, col))


@pytest.mark.parametrize("length", [1, 255, 256, 257, 1000])
def test_rows_around_the_block_length(length: int) -> None:
    rng = np.random.default_rng(length)
    x = rng.standard_normal((3, length)).astype("float32")
    strided = rng.standard_normal((3, 2 * length)).astype("float32")[:, ::2]  # buffered rows
    row = rng.standard_normal((1, length)).astype("float32")  # in-place rows, one call each
    same(*run_both(lambda a, b: T.exp(a) * b, x, strided))
    same(*run_both(lambda a, b: T.exp(a) * b, x, row))


def test_statically_one_element_input_and_rank_zero() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6))[:, ::2]
    s = T.tensor("float64", (1, 1))
    m = T.matrix(dtype="float64")
    native = graphc.function([m, s], m * s, mode=NATIVE)
    assert np.array_equal(native(x, np.full((1, 1), 3.0)), x * 3.0)
    same(*run_both(lambda a, b: a - b, np.array(2.5), np.array(4.0)))


def test_negative_strides_and_views_of_views() -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 30))
    x = base[::-3, 5:25:2]
    y = base[:, ::-1][::-3, 3:13]
    same(*run_both(lambda a, b: T.sqrt(abs(a)) + b, x, y))


def test_kernels_call_the_shared_driver_and_it_is_bound_once() -> None:
    x = T.matrix(dtype="float32")
    fn = graphc.function([x], T.tanh(x) * 2)
    assert strided_driver.DRIVER in fn.llvm_ir()
    data = np.ones((4, 6), "float32")[:, ::2]
    assert np.allclose(fn(data), np.tanh(data) * 2)
    addr = strided_driver.bind()
    assert addr and strided_driver.bind() == addr


def test_a_million_rows_keep_the_stack_flat() -> None:
    """The odometer runs once per row: nothing in it may allocate stack (an alloca in the
    row loop grew the stack by a word per row)."""
    x = np.ones((1000, 1000, 2), "float32")
    y = np.arange(2, dtype="float32").reshape(1, 1, 2)
    got, want = run_both(lambda a, b: a + b, x, y)
    same(got, want)
