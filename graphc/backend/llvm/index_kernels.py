"""Kernels for indexing with one integer array on the first axis: ``x[idx]`` (a row
gather, as an embedding lookup) and its update ``set_subtensor``/``inc_subtensor``
(its gradient: ``np.add.at``, which is slow in NumPy).

Every index is checked before use: NumPy's wrap-around for ``-n <= i < 0``, and
anything else out of ``[0, n)`` stops the kernel (status 1) before any access, so the
reference raises its IndexError. Rows are copied by loops over the remaining axes with
the arrays' strides; the innermost runs on vectors when it is unit-stride. Repeated
indices accumulate (``inc``) or the last one wins (``set``), as in NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I32, I64, NATIVE_DTYPES, is_float, is_signed
from graphc.backend.llvm.lowering import (
    Arr,
    Gate,
    NativeNode,
    c64,
    entry_alloca,
    kernel_id,
    nest,
    new_kernel,
    register_lowering,
)
from graphc.backend.llvm.reduce_kernels import _contiguous_strides
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.subtensor import IncSubtensor, Subtensor

Runner = Callable[[list[Any]], list[Any]]
_FORM = (("a",),)  # x[idx]: one integer array indexing the first axis


def _row_index(b: ir.IRBuilder, idx: Arr, off: ir.Value, n: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(the index as a row number, whether it is in range), NumPy's negative indices wrapped
    (a uint64 index beyond 2**63 reads as negative, as NumPy's conversion to intp does)."""
    v = idx.load(off)
    wide = v if v.type.width == 64 else (b.sext(v, I64) if is_signed(idx.dtype) else b.zext(v, I64))
    neg = b.icmp_signed("<", wide, c64(0))
    row = b.select(neg, b.add(wide, n), wide)
    ok = b.and_(b.icmp_signed(">=", row, c64(0)), b.icmp_signed("<", row, n))
    return row, ok


def _guarded(b: ir.IRBuilder, status: ir.Value, ok: ir.Value, body: Callable[[], None]) -> None:
    with b.if_else(ok) as (good, bad):
        with good:
            body()
        with bad:
            b.store(ir.Constant(I32, 1), status)


def build_take(module: ir.Module, name: str, dtype: str, idtype: str, xnd: int, qnd: int) -> None:
    """``out[k..., rest...] = x[idx[k...], rest...]`` with ``out`` C-contiguous."""
    fn, b, (px, pi, po) = new_kernel(module, name, 3)
    x, idx = Arr(b, px, dtype, xnd), Arr(b, pi, idtype, qnd)
    out = Arr(b, po, dtype, qnd + xnd - 1)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    rest = x.dims[1:]
    rstr = _contiguous_strides(b, rest)
    row_size = c64(1)
    for d in rest:
        row_size = b.mul(row_size, d)
    qstr = _contiguous_strides(b, idx.dims)

    def one(offs: list[ir.Value]) -> None:
        io, oo = offs
        r, ok = _row_index(b, idx, io, x.dims[0])

        def copy() -> None:
            base = b.mul(r, x.strides[0])
            nest(b, rest, [x.strides[1:], rstr], [base, b.mul(oo, row_size)],
                 lambda o: out.store(x.load(o[0]), o[1]))

        _guarded(b, status, ok, copy)

    nest(b, idx.dims, [idx.strides, qstr], [c64(0), c64(0)], one)
    b.ret(b.load(status, typ=I32))


def build_update(module: ir.Module, name: str, dtype: str, idtype: str, xnd: int, qnd: int, ynd: int,
                 set_: bool) -> None:
    """``out = copy(x)``; then ``out[idx[k...], rest...] (+)= y[k..., rest...]`` (y broadcast)."""
    fn, b, (px, py, pi, po) = new_kernel(module, name, 4)
    x, y, idx = Arr(b, px, dtype, xnd), Arr(b, py, dtype, ynd), Arr(b, pi, idtype, qnd)
    out = Arr(b, po, dtype, xnd)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    ostr = _contiguous_strides(b, x.dims)
    nest(b, x.dims, [x.strides, ostr], [c64(0), c64(0)], lambda o: out.store(x.load(o[0]), o[1]))
    # y aligned to the right of the target shape idx.shape + x.shape[1:], broadcast.
    tnd = qnd + xnd - 1
    ystr = [y.bstride(d - (tnd - ynd)) if d >= tnd - ynd else c64(0) for d in range(tnd)]
    rest = x.dims[1:]

    def one(offs: list[ir.Value]) -> None:
        io, yo = offs
        r, ok = _row_index(b, idx, io, x.dims[0])

        def update() -> None:
            def put(o: list[ir.Value]) -> None:
                v = y.load(o[1])
                if not set_:
                    old = out.load(o[0])
                    v = b.fadd(old, v) if is_float(dtype) else b.add(old, v)
                out.store(v, o[0])

            nest(b, rest, [ostr[1:], ystr[qnd:]], [b.mul(r, ostr[0]), yo], put)

        _guarded(b, status, ok, update)

    nest(b, idx.dims, [idx.strides, ystr[:qnd]], [c64(0), c64(0)], one)
    b.ret(b.load(status, typ=I32))


def _lower_adv(node: Apply) -> NativeNode | None:
    # Imported here: that module imports this one.
    from graphc.backend.llvm.index_adv_kernels import lower_adv

    return lower_adv(node)


def _ok_dtypes(dtype: str, idtype: str) -> bool:
    return dtype in NATIVE_DTYPES and idtype in NATIVE_DTYPES and idtype != "bool" and not is_float(idtype)


@register_lowering(Subtensor)
def lower_take(node: Apply) -> NativeNode | None:
    if node.op.idx_list != _FORM:
        return _lower_adv(node)
    x, idx = node.inputs
    if x.ndim < 1 or not _ok_dtypes(x.dtype, idx.dtype):
        return None
    name = kernel_id("gctake", x.dtype, idx.dtype, x.ndim, idx.ndim)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            a, ix = get(values)
            out = alloc(ix.shape + a.shape[1:])
            if cfunc(0, 0, a, ix, out):
                return run_node(node, values)  # an index out of range: the reference's IndexError
            return [out]

        return run

    return NativeNode(name, 3, lambda m: build_take(m, name, x.dtype, idx.dtype, x.ndim, idx.ndim), runner)


@register_lowering(IncSubtensor)
def lower_update(node: Apply) -> NativeNode | None:
    if node.op.idx_list != _FORM:
        return _lower_adv(node)
    x, y, idx = node.inputs
    if x.ndim < 1 or y.dtype != x.dtype or not _ok_dtypes(x.dtype, idx.dtype):
        return None
    set_ = node.op.set_instead_of_inc
    if not set_ and x.dtype == "bool":
        return None
    name = kernel_id("gcupdate", x.dtype, idx.dtype, x.ndim, idx.ndim, y.ndim, set_)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1, 2)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            a, v, ix = get(values)
            target = ix.shape + a.shape[1:]
            if v.shape != target:
                try:
                    if np.broadcast_shapes(v.shape, target) != target:
                        return run_node(node, values)
                except ValueError:
                    return run_node(node, values)  # raises the reference's error
            out = alloc(a.shape)
            if cfunc(0, 0, a, v, ix, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 4, lambda m: build_update(m, name, x.dtype, idx.dtype, x.ndim, idx.ndim, y.ndim,
                                                      set_), runner)
