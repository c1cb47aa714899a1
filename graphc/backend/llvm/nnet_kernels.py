"""Kernels of the nnet ops that are not elementwise: softmax and log-softmax over an axis,
and the integer-label pick/scatter of cross-entropy.

Softmax over the last axis runs each row (every position of the other axes) on explicit
vectors (graphc.backend.llvm.nnet_rows): the maximum, ``exp(x - max)`` summed (float32
accumulates in float64) and, for softmax, stored times ``1/sum`` (or ``x - max -
log(sum)``, the logs taken for a vector of rows at once); a NaN in a row makes the row NaN,
as with ``np.max``. The kernels read rows contiguous along the axis only (others return
status 2); the runners copy other layouts first. Over another axis, blocks of columns
run down the axis with running maxima and sums (``_softmax_columns``).

LabelPick/LabelScatter check every label against the row length before using it: a
label out of range stops the kernel before any access, and the reference then raises
its error naming the bad values. The runner checks the shapes first.

CrossentropySoftmax runs the softmax row passes once for both its outputs: the loss is
``log(sum) - (x[label] - max)`` (the label checked as above) or
``sum_j t[j] * (log(sum) - (x[j] - max))`` with targets broadcast along either axis
(along the classes: materialized by the runner).
``sigmoid_binary_crossentropy`` is a scalar op: its lowering joins the elementwise ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import scalar as _scalar
from graphc.backend.llvm import vmath
from graphc.backend.llvm.irutil import (
    I32,
    I64,
    NATIVE_DTYPES,
    call_intr,
    const,
    is_float,
    is_signed,
    reg_type,
)
from graphc.backend.llvm.lowering import (
    Arr,
    Gate,
    NativeNode,
    c64,
    entry_alloca,
    for_range,
    kernel_id,
    nest,
    new_kernel,
    register_lowering,
)
from graphc.backend.llvm.nnet_rows import require_contiguous, softmax_rows, vector_bytes, xent_rows
from graphc.backend.llvm.reduce_kernels import _contiguous_strides
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.nnet import CrossentropySoftmax, LabelPick, LabelScatter, LogSoftmax, Softmax

RowBody = Callable[[list[ir.Value]], None]


def build_softmax(module: ir.Module, name: str, dtype: str, ndim: int, axis: int, log: bool) -> None:
    fn, b, (px, po) = new_kernel(module, name, 2)
    x, out = Arr(b, px, dtype, ndim), Arr(b, po, dtype, ndim)
    ostr = _contiguous_strides(b, x.dims)
    others = [d for d in range(ndim) if d != axis]
    n, sx = x.dims[axis], x.strides[axis]
    if axis == ndim - 1:
        def rows(body: RowBody) -> None:
            nest(b, [x.dims[d] for d in others], [[x.strides[d] for d in others], [ostr[d] for d in others]],
                 [c64(0), c64(0)], body)

        nrows = c64(1)
        for d in others:
            nrows = b.mul(nrows, x.dims[d])
        require_contiguous(b, n, sx)
        softmax_rows(b, x, out, n, log, nrows, rows)
    else:
        _softmax_columns(b, x, out, ostr, axis, log)
    b.ret(ir.Constant(I32, 0))


BLOCK = 256


def _softmax_columns(b: ir.IRBuilder, x: Arr, out: Arr, ostr: list[ir.Value], axis: int, log: bool) -> None:
    """Softmax along a non-last axis, BLOCK columns of the last axis at a time: running
    maxima and sums per column in buffers, so every inner loop is unit-stride (a row at
    a time down the axis would walk memory by the row length and never vectorize)."""
    ndim = x.ndim
    last = ndim - 1
    ty = reg_type(x.dtype)
    acc_ty = reg_type("float64")
    mxb, totb, sb = entry_alloca(b, ty, BLOCK), entry_alloca(b, acc_ty, BLOCK), entry_alloca(b, ty, BLOCK)
    outer = [d for d in range(ndim) if d not in (axis, last)]
    n, sx, so, sl = x.dims[axis], x.strides[axis], ostr[axis], x.strides[last]

    def at(buf: ir.Value, t: ir.Type, j: ir.Value) -> ir.Value:
        return b.gep(buf, [j], source_etype=t)

    def block(xo: ir.Value, oo: ir.Value, first: ir.Value, m: ir.Value) -> None:
        xb = b.add(xo, b.mul(first, sl))
        ob = b.add(oo, first)

        def rows(body: Callable[[ir.Value, ir.Value, ir.Value], None]) -> None:
            for_range(b, n, lambda r: for_range(b, m, lambda j: body(
                b.add(b.add(xb, b.mul(r, sx)), b.mul(j, sl)), b.add(b.add(ob, b.mul(r, so)), j), j)))

        def init(j: ir.Value) -> None:
            b.store(const(x.dtype, float("-inf")), at(mxb, ty, j))
            b.store(ir.Constant(acc_ty, 0.0), at(totb, acc_ty, j))

        for_range(b, m, init)
        rows(lambda xi, oi, j: b.store(
            call_intr(b, "maximum", b.load(at(mxb, ty, j), typ=ty), x.load(xi)), at(mxb, ty, j)))

        def expsum(xi: ir.Value, oi: ir.Value, j: ir.Value) -> None:
            e = vmath.call_math(b, "exp", b.fsub(x.load(xi), b.load(at(mxb, ty, j), typ=ty)))
            if not log:
                out.store(e, oi)
            wide = b.fpext(e, acc_ty) if ty != acc_ty else e
            p = at(totb, acc_ty, j)
            b.store(b.fadd(b.load(p, typ=acc_ty), wide), p)

        rows(expsum)

        def total(j: ir.Value) -> None:
            t = b.load(at(totb, acc_ty, j), typ=acc_ty)
            t = b.fptrunc(t, ty) if ty != acc_ty else t
            b.store(vmath.call_math(b, "log", t) if log else t, at(sb, ty, j))

        for_range(b, m, total)
        if log:
            rows(lambda xi, oi, j: out.store(b.fsub(b.fsub(x.load(xi), b.load(at(mxb, ty, j), typ=ty)),
                                                    b.load(at(sb, ty, j), typ=ty)), oi))
        else:
            rows(lambda xi, oi, j: out.store(b.fdiv(out.load(oi), b.load(at(sb, ty, j), typ=ty)), oi))

    def per_outer(offs: list[ir.Value]) -> None:
        length = x.dims[last]
        nblocks = b.udiv(b.add(length, c64(BLOCK - 1)), c64(BLOCK))

        def one(bi: ir.Value) -> None:
            first = b.mul(bi, c64(BLOCK))
            left = b.sub(length, first)
            block(offs[0], offs[1], first, b.select(b.icmp_signed("<", left, c64(BLOCK)), left, c64(BLOCK)))

        for_range(b, nblocks, one)

    nest(b, [x.dims[d] for d in outer], [[x.strides[d] for d in outer], [ostr[d] for d in outer]],
         [c64(0), c64(0)], per_outer)


def _label_index(b: ir.IRBuilder, lab: Arr, off: ir.Value, n: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(label as i64, whether it lies in [0, n))."""
    v = lab.load(off)
    wide = v if v.type.width == 64 else (b.sext(v, I64) if is_signed(lab.dtype) else b.zext(v, I64))
    # An unsigned 64-bit label beyond 2**63 reads as negative: rejected too.
    ok = b.and_(b.icmp_signed(">=", wide, c64(0)), b.icmp_signed("<", wide, n))
    return wide, ok


def build_label_pick(module: ir.Module, name: str, dtype: str, ldtype: str, ndim: int) -> None:
    fn, b, (px, pl, po) = new_kernel(module, name, 3)
    x, lab, out = Arr(b, px, dtype, ndim), Arr(b, pl, ldtype, ndim - 1), Arr(b, po, dtype, ndim - 1)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    n, sx = x.dims[-1], x.strides[-1]
    lead = list(range(ndim - 1))

    def pick(offs: list[ir.Value]) -> None:
        xo, lo, oo = offs
        k, ok = _label_index(b, lab, lo, n)
        with b.if_else(ok) as (good, bad):
            with good:
                out.store(x.load(b.add(xo, b.mul(k, sx))), oo)
            with bad:
                b.store(ir.Constant(I32, 1), status)

    ostr = _contiguous_strides(b, lab.dims)
    nest(b, [lab.dims[d] for d in lead], [[x.strides[d] for d in lead], [lab.strides[d] for d in lead], ostr],
         [c64(0)] * 3, pick)
    b.ret(b.load(status, typ=I32))


def build_label_scatter(module: ir.Module, name: str, dtype: str, ldtype: str, ndim: int) -> None:
    fn, b, (pg, pl, po) = new_kernel(module, name, 3)
    g, lab, out = Arr(b, pg, dtype, ndim - 1), Arr(b, pl, ldtype, ndim - 1), Arr(b, po, dtype, ndim)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    total = c64(1)
    for d in out.dims:
        total = b.mul(total, d)
    zero = const(dtype, 0)
    for_range(b, total, lambda i: out.store(zero, i))
    n = out.dims[-1]
    lead = list(range(ndim - 1))
    ostr = _contiguous_strides(b, out.dims)

    def put(offs: list[ir.Value]) -> None:
        go, lo, oo = offs
        k, ok = _label_index(b, lab, lo, n)
        with b.if_else(ok) as (good, bad):
            with good:
                out.store(g.load(go), b.add(oo, k))
            with bad:
                b.store(ir.Constant(I32, 1), status)

    nest(b, [lab.dims[d] for d in lead], [[g.strides[d] for d in lead], [lab.strides[d] for d in lead],
                                          [ostr[d] for d in lead]], [c64(0)] * 3, put)
    b.ret(b.load(status, typ=I32))


# -- lowerings -------------------------------------------------------------------------------
Runner = Callable[[list[Any]], list[Any]]


@register_lowering(Softmax, LogSoftmax)
def lower_softmax(node: Apply) -> NativeNode | None:
    x = node.inputs[0]
    if x.dtype not in ("float32", "float64"):
        return None
    log = isinstance(node.op, LogSoftmax)
    axis = node.op.axis
    last = axis == x.ndim - 1
    name = kernel_id("gcsoftmax", x.dtype, x.ndim, axis, log, vector_bytes())

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0,)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            (a,) = get(values)
            if a.shape[axis] == 0:
                return run_node(node, values)  # NumPy's max of an empty row: an error
            if last and a.strides[-1] != a.itemsize and a.shape[-1] > 1:
                a = np.ascontiguousarray(a)  # the kernel reads contiguous rows only
            out = alloc(a.shape)
            if cfunc(0, 0, a, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 2, lambda m: build_softmax(m, name, x.dtype, x.ndim, axis, log), runner)


def _label_dtypes(dtype: str, ldtype: str) -> bool:
    return dtype in NATIVE_DTYPES and ldtype in NATIVE_DTYPES and ldtype != "bool" and not is_float(ldtype)


@register_lowering(LabelPick)
def lower_label_pick(node: Apply) -> NativeNode | None:
    x, labels = node.inputs
    if not _label_dtypes(x.dtype, labels.dtype):
        return None
    name = kernel_id("gcpick", x.dtype, labels.dtype, x.ndim)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            a, lab = get(values)
            if lab.shape != a.shape[:-1]:
                return run_node(node, values)  # raises the reference's error
            out = alloc(lab.shape)
            if cfunc(0, 0, a, lab, out):
                return run_node(node, values)  # a label out of range: the reference says which
            return [out]

        return run

    return NativeNode(name, 3, lambda m: build_label_pick(m, name, x.dtype, labels.dtype, x.ndim), runner)


@register_lowering(LabelScatter)
def lower_label_scatter(node: Apply) -> NativeNode | None:
    g, labels, like = node.inputs
    dtype = node.outputs[0].dtype
    if not _label_dtypes(dtype, labels.dtype):
        return None
    name = kernel_id("gcscatter", dtype, labels.dtype, like.ndim)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            gv, lab = get(values)
            shape = getattr(values[2], "shape", None)
            if shape is None or len(shape) != like.ndim or lab.shape != shape[:-1] or gv.shape != lab.shape:
                return run_node(node, values)
            out = alloc(tuple(shape))
            if cfunc(0, 0, gv, lab, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 3, lambda m: build_label_scatter(m, name, dtype, labels.dtype, like.ndim), runner)



# -- cross-entropy of a softmax --------------------------------------------------------------
def build_crossentropy_softmax(module: ir.Module, name: str, dtype: str, ldtype: str | None) -> None:
    """Arrays: logits (R, N), labels (R,) or targets broadcastable to (R, N), loss (R,),
    softmax (R, N). A label out of range returns status 1 before any access with it.
    The rows run on vectors (graphc.backend.llvm.nnet_rows)."""
    fn, b, (px, pt, pl, ps) = new_kernel(module, name, 4)
    x = Arr(b, px, dtype, 2)
    t = Arr(b, pt, ldtype, 1) if ldtype is not None else Arr(b, pt, dtype, 2)
    loss, sm = Arr(b, pl, dtype, 1), Arr(b, ps, dtype, 2)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    n, sx = x.dims[1], x.strides[1]
    sstr = _contiguous_strides(b, sm.dims)
    tstr = [t.bstride(0)] if ldtype is not None else [t.bstride(0), t.bstride(1)]

    def label_loss(xo: ir.Value, to: ir.Value, lo: ir.Value, m: ir.Value, ls: ir.Value) -> None:
        k, ok = _label_index(b, t, to, n)
        with b.if_else(ok) as (good, bad):
            with good:
                loss.store(b.fsub(ls, b.fsub(x.load(b.add(xo, b.mul(k, sx))), m)), lo)
            with bad:
                b.store(ir.Constant(I32, 1), status)

    def rows(body: RowBody) -> None:
        nest(b, [x.dims[0]], [[x.strides[0]], [tstr[0]], [c64(1)], [sstr[0]]], [c64(0)] * 4, body)

    labels = ldtype is not None
    require_contiguous(b, n, sx, *([] if labels else [tstr[1]]))
    xent_rows(b, x, t, loss, sm, n, rows, label_loss if labels else None)
    b.ret(b.load(status, typ=I32))


@register_lowering(CrossentropySoftmax)
def lower_crossentropy_softmax(node: Apply) -> NativeNode | None:
    x, t = node.inputs
    if x.dtype not in ("float32", "float64"):
        return None
    labels = t.ndim == 1
    if labels and not _label_dtypes(x.dtype, t.dtype):
        return None
    ldtype = t.dtype if labels else None
    name = kernel_id("gcxentsm", x.dtype, ldtype, vector_bytes())

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc_loss, alloc_sm = gate.getter((0, 1)), gate.allocator(0), gate.allocator(1)

        def run(values: list[Any]) -> list[Any]:
            a, tv = get(values)
            rows, n = a.shape
            # Anything but targets broadcasting into the logits (labels: one per row) runs
            # the reference, which raises its error or broadcasts the logits too.
            if n == 0 or (tv.shape != (rows,) if labels else
                          any(d not in (1, e) for d, e in zip(tv.shape, a.shape))):
                return run_node(node, values)
            if n > 1:  # the kernel reads contiguous rows only (targets: or broadcast rows)
                if a.strides[1] != a.itemsize:
                    a = np.ascontiguousarray(a)
                if not labels and tv.shape[1] == 1:
                    tv = np.ascontiguousarray(np.broadcast_to(tv, (tv.shape[0], n)))
                elif not labels and tv.strides[1] != tv.itemsize:
                    tv = np.ascontiguousarray(tv)
            out_loss, out_sm = alloc_loss((rows,)), alloc_sm(a.shape)
            if cfunc(0, 0, a, tv, out_loss, out_sm):
                return run_node(node, values)  # a label out of range: the reference says which
            return [out_loss, out_sm]

        return run

    return NativeNode(name, 4, lambda m: build_crossentropy_softmax(m, name, x.dtype, ldtype), runner)


# -- the elementwise sigmoid_binary_crossentropy ----------------------------------------------
_SBCE = "sigmoid_binary_crossentropy"
# Its reference is not a ufunc: the loop dtype is what the reference returns for the inputs.
_scalar._PROBED.add(_SBCE)
_scalar._FLOAT_ONLY.add(_SBCE)


@_scalar.lowering(_SBCE)
def _sigmoid_binary_crossentropy(ctx: _scalar.Ctx, v: list[ir.Value], t: str) -> ir.Value:
    """``max(x, 0) - x * t + log1p(exp(-|x|))``, as the reference."""
    b, (x, y) = ctx.b, v
    zero = const(t, 0)
    pos = _scalar._max(b, x, zero, t, ">=")
    tail = vmath.call_math(b, "log1p", vmath.call_math(b, "exp", b.fneg(call_intr(b, "fabs", x))))
    return b.fadd(b.fsub(pos, b.fmul(x, y)), tail)
