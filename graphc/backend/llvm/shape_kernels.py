"""Kernels for the shape ops that build arrays: Join (concatenate), Stack, Alloc, Eye, ARange.

Join, Stack and Alloc only move bytes, so their kernels are keyed on the item size, not
the dtype (bool, float16 and every int or float type share one kernel per width). A
C-contiguous input is copied with one ``memcpy`` per block (one for a whole operand
joined on axis 0); anything else goes through loops over its strides.

Sizes given by values (Alloc's shape scalars, Eye's ``n, m, k``, ARange's bounds) are
passed to the kernel as 0-d arrays and checked against the output's dims there too: a
plan (graphc.backend.llvm.plan) replays kernel calls at the recorded shapes, so a call
whose scalars now ask for another shape must fail (the caller then takes the per-node
path, which allocates anew) instead of writing the old shape. Every kernel also checks
the input dims it relies on, so native code never reads or writes out of bounds whatever
buffers it is handed.

Integer Stack/Join nodes computed from shapes alone (a shape vector such as
``(x.shape[0], -1)``) stay on the reference: plans compute such nodes once, from the
shapes their key fixes, and treat the result as a constant, which a reshape consuming it
needs in order to stay a view. A stack of other scalars (losses, say) runs natively.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import (
    F64,
    I1,
    I8,
    I32,
    I64,
    NATIVE_DTYPES,
    PTR,
    intrinsic,
    is_float,
    mem_type,
)
from graphc.backend.llvm.kernel import NPY_C_CONTIGUOUS, OFF_FLAGS
from graphc.backend.llvm.lowering import (
    Arr,
    Gate,
    NativeNode,
    c64,
    copy_strided,
    field,
    for_range,
    kernel_id,
    nest,
    new_kernel,
    register_lowering,
)
from graphc.backend.llvm.reduce_kernels import _contiguous_strides
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply, Constant, Variable
from graphc.ops.shape import Alloc, ARange, Eye, Join, Stack

Runner = Callable[[list[Any]], list[Any]]
_BY_SIZE = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}  # what a copy moves per item
_KINDS = "biuf"
_BIG = 1 << 52  # integer ARange bounds beyond this: the reference (exact Python arithmetic)
_MAX_LEN = 1 << 62


def _copy_dtype(dtype: str) -> str | None:
    dt = np.dtype(dtype)
    return _BY_SIZE.get(dt.itemsize) if dt.kind in _KINDS else None


# -- IR helpers ------------------------------------------------------------------------
def _c_contiguous(b: ir.IRBuilder, obj: ir.Value) -> ir.Value:
    f = field(b, obj, OFF_FLAGS, I32)
    return b.icmp_unsigned("!=", b.and_(f, ir.Constant(I32, NPY_C_CONTIGUOUS)), ir.Constant(I32, 0))


def _product(b: ir.IRBuilder, dims: list[ir.Value]) -> ir.Value:
    acc: ir.Value = c64(1)
    for d in dims:
        acc = b.mul(acc, d)
    return acc


def _refuse_unless(b: ir.IRBuilder, ok: ir.Value) -> None:
    """Return status 1 unless ``ok``; the builder continues on the good branch."""
    go = b.append_basic_block("checked")
    bad = b.append_basic_block("refused")
    b.cbranch(ok, go, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, 1))
    b.position_at_end(go)


def _memcpy(b: ir.IRBuilder, dst: ir.Value, src: ir.Value, nbytes: ir.Value) -> None:
    fn = intrinsic(b.module, "llvm.memcpy.p0.p0.i64", ir.VoidType(), [PTR, PTR, I64, I1])
    b.call(fn, [dst, src, nbytes, ir.Constant(I1, 0)])


def _scalar(b: ir.IRBuilder, obj: ir.Value) -> ir.Value:
    """The value of an int64 0-d array."""
    return Arr(b, obj, "int64", 0).load(c64(0))


# -- Join / Stack ------------------------------------------------------------------------
def build_join(module: ir.Module, name: str, cdt: str, ndim: int, n: int, axis: int, stack: bool) -> None:
    """``out = concatenate(ins, axis)`` (``stack``: each input gets a unit axis first),
    ``out`` C-contiguous."""
    fn, b, arrays = new_kernel(module, name, n + 1)
    ond = ndim + 1 if stack else ndim
    out = Arr(b, arrays[-1], cdt, ond)
    ins = [Arr(b, a, cdt, ndim) for a in arrays[:-1]]
    views = []
    for x in ins:
        if stack:
            views.append((x.dims[:axis] + [c64(1)] + x.dims[axis:],
                          x.strides[:axis] + [c64(0)] + x.strides[axis:]))
        else:
            views.append((x.dims, x.strides))
    ok = _c_contiguous(b, arrays[-1])
    total: ir.Value = c64(0)
    for dims, _ in views:
        for d in range(ond):
            if d != axis:
                ok = b.and_(ok, b.icmp_signed("==", dims[d], out.dims[d]))
        total = b.add(total, dims[axis])
    _refuse_unless(b, b.and_(ok, b.icmp_signed("==", total, out.dims[axis])))
    ostr = _contiguous_strides(b, out.dims)
    outer = _product(b, out.dims[:axis])
    tail = _product(b, out.dims[axis + 1:])
    row = b.mul(out.dims[axis], tail)  # output elements per outer index
    size = c64(np.dtype(cdt).itemsize)
    base: ir.Value = c64(0)  # where the current input starts along ``axis``
    for x, obj, (dims, strides) in zip(ins, arrays[:-1], views):
        block = b.mul(dims[axis], tail)
        start = b.mul(base, tail)
        with b.if_else(_c_contiguous(b, obj)) as (fast, slow):
            with fast:
                def one(o: ir.Value, x: Arr = x, block: ir.Value = block, start: ir.Value = start) -> None:
                    dst = out.ptr(b.add(start, b.mul(o, row)))
                    _memcpy(b, dst, x.ptr(b.mul(o, block)), b.mul(block, size))

                for_range(b, outer, one)
            with slow:
                def inner(offs: list[ir.Value], x: Arr = x, dims: list = dims, strides: list = strides
                          ) -> None:
                    copy_strided(b, x.ty, out.ptr(offs[1]), x.ptr(offs[0]), dims[-1], strides[-1])

                nest(b, dims[:-1], [strides[:-1], ostr[:-1]], [c64(0), start], inner)
        base = b.add(base, dims[axis])
    b.ret(ir.Constant(I32, 0))


_SHAPE_OPS = ("Shape", "ReducedSize")  # outputs that depend on their inputs' shapes only


def _from_shapes(v: Variable) -> bool:
    """Whether ``v`` is computed from constants and shapes alone."""
    seen: set[int] = set()
    pending = [v]
    while pending:
        x = pending.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if x.owner is None:
            if not isinstance(x, Constant):
                return False
        elif type(x.owner.op).__name__ not in _SHAPE_OPS:
            pending.extend(x.owner.inputs)
    return True


def _lower_join(node: Apply, stack: bool) -> NativeNode | None:
    ts = node.inputs
    cdt = _copy_dtype(node.outputs[0].dtype)
    ndim, axis, n = ts[0].ndim, node.op.axis, len(ts)
    if cdt is None or (node.outputs[0].dtype[0] in "iu" and all(_from_shapes(t) for t in ts)):
        return None
    name = kernel_id("gcstack" if stack else "gcjoin", cdt, ndim, n, axis)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter(range(n)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            xs = get(values)
            shape = xs[0].shape
            if stack:
                if any(x.shape != shape for x in xs):
                    return run_node(node, values)  # NumPy's ValueError
                target = shape[:axis] + (n,) + shape[axis:]
            else:
                rest = shape[:axis] + shape[axis + 1:]
                length = 0
                for x in xs:
                    s = x.shape
                    if s[:axis] + s[axis + 1:] != rest:
                        return run_node(node, values)
                    length += s[axis]
                target = shape[:axis] + (length,) + shape[axis + 1:]
            out = alloc(target)
            if cfunc(0, 0, *xs, out):
                return run_node(node, values)  # an unaligned input
            return [out]

        return run

    return NativeNode(name, n + 1, lambda m: build_join(m, name, cdt, ndim, n, axis, stack), runner)


@register_lowering(Join)
def lower_join(node: Apply) -> NativeNode | None:
    return _lower_join(node, False)


@register_lowering(Stack)
def lower_stack(node: Apply) -> NativeNode | None:
    return _lower_join(node, True)


# -- Alloc -------------------------------------------------------------------------------
def build_alloc(module: ir.Module, name: str, cdt: str, vnd: int, ond: int) -> None:
    """``out = broadcast_to(value, shape)`` with ``shape`` given by int64 0-d arrays."""
    fn, b, arrays = new_kernel(module, name, ond + 2)
    v, out = Arr(b, arrays[0], cdt, vnd), Arr(b, arrays[-1], cdt, ond)
    ok = _c_contiguous(b, arrays[-1])
    for d, obj in enumerate(arrays[1:-1]):
        ok = b.and_(ok, b.icmp_signed("==", _scalar(b, obj), out.dims[d]))
    lead = ond - vnd
    for i in range(vnd):
        fits = b.or_(b.icmp_signed("==", v.dims[i], out.dims[lead + i]),
                     b.icmp_signed("==", v.dims[i], c64(1)))
        ok = b.and_(ok, fits)
    _refuse_unless(b, ok)
    total = _product(b, out.dims)
    one_value = b.icmp_signed("==", _product(b, v.dims), c64(1))
    if ond == 0:
        out.store(v.load(c64(0)), c64(0))
        b.ret(ir.Constant(I32, 0))
        return
    vstr = [c64(0)] * lead + [v.bstride(i) for i in range(vnd)]
    ostr = _contiguous_strides(b, out.dims)
    with b.if_else(one_value) as (fill, general):
        with fill:  # zeros, ones, the gradient of a sum: one value everywhere
            value = v.load(c64(0))
            for_range(b, total, lambda i: out.store(value, i))
        with general:
            def inner(offs: list[ir.Value]) -> None:
                vo, oo = offs
                for_range(b, out.dims[-1], lambda j: out.store(v.load(b.add(vo, b.mul(j, vstr[-1]))),
                                                               b.add(oo, j)))

            nest(b, out.dims[:-1], [vstr[:-1], ostr[:-1]], [c64(0), c64(0)], inner)
    b.ret(ir.Constant(I32, 0))


@register_lowering(Alloc)
def lower_alloc(node: Apply) -> NativeNode | None:
    value = node.inputs[0]
    cdt = _copy_dtype(value.dtype)
    if cdt is None or any(s.dtype != "int64" or s.ndim != 0 for s in node.inputs[1:]):
        return None
    vnd, ond = value.ndim, len(node.inputs) - 1
    name = kernel_id("gcalloc", cdt, vnd, ond)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter(range(ond + 1)), gate.allocator(0)
        lead = ond - vnd

        def run(values: list[Any]) -> list[Any]:
            v, *shp = get(values)
            target = tuple(int(s) for s in shp)
            vs = v.shape
            for i, d in enumerate(vs):
                if d != 1 and d != target[lead + i]:
                    return run_node(node, values)  # NumPy's broadcast error
            if any(s < 0 for s in target):
                return run_node(node, values)
            out = alloc(target)
            if cfunc(0, 0, v, *shp, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, ond + 2, lambda m: build_alloc(m, name, cdt, vnd, ond), runner)


# -- Eye ---------------------------------------------------------------------------------
def build_eye(module: ir.Module, name: str, dtype: str) -> None:
    """``out = eye(n, m, k)``: zeros, then ones on diagonal ``k``."""
    fn, b, (pn, pm, pk, po) = new_kernel(module, name, 4)
    n, m, k = _scalar(b, pn), _scalar(b, pm), _scalar(b, pk)
    out = Arr(b, po, dtype, 2)
    ok = b.and_(_c_contiguous(b, po), b.and_(b.icmp_signed("==", n, out.dims[0]),
                                             b.icmp_signed("==", m, out.dims[1])))
    _refuse_unless(b, ok)
    memset = intrinsic(b.module, "llvm.memset.p0.i64", ir.VoidType(), [PTR, I8, I64, I1])
    nbytes = b.mul(b.mul(n, m), c64(np.dtype(dtype).itemsize))
    b.call(memset, [out.data, ir.Constant(I8, 0), nbytes, ir.Constant(I1, 0)])
    up = b.icmp_signed(">=", k, c64(0))
    # Diagonal k: (j, j + k) for k >= 0, (j - k, j) below; -k is only used when count > 0.
    count = b.select(up, b.sub(m, k), b.add(n, k))
    limit = b.select(up, n, m)
    count = b.select(b.icmp_signed("<", limit, count), limit, count)
    r0, c0 = b.select(up, c64(0), b.neg(k)), b.select(up, k, c64(0))
    one = (ir.Constant(I1, 1) if dtype == "bool"
           else ir.Constant(mem_type(dtype), 1.0 if is_float(dtype) else 1))
    start = b.add(b.mul(r0, m), c0)
    step = b.add(m, c64(1))
    for_range(b, count, lambda j: out.store(one, b.add(start, b.mul(j, step))))
    b.ret(ir.Constant(I32, 0))


@register_lowering(Eye)
def lower_eye(node: Apply) -> NativeNode | None:
    dtype = node.outputs[0].dtype
    if dtype not in NATIVE_DTYPES or any(s.dtype != "int64" for s in node.inputs):
        return None
    name = kernel_id("gceye", dtype)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1, 2)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            pn, pm, pk = get(values)
            n, m = int(pn), int(pm)
            if n < 0 or m < 0:
                return run_node(node, values)
            out = alloc((n, m))
            if cfunc(0, 0, pn, pm, pk, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 4, lambda mod: build_eye(mod, name, dtype), runner)


# -- ARange ------------------------------------------------------------------------------
def _as_i64(b: ir.IRBuilder, x: Arr) -> tuple[ir.Value, ir.Value]:
    """(the integer value as i64, whether it is within +-2**52)."""
    v = x.load(c64(0))
    w = v.type.width
    if w < 64:
        v = b.zext(v, I64) if x.dtype.startswith("u") else b.sext(v, I64)
    small = b.and_(b.icmp_signed(">", v, c64(-_BIG)), b.icmp_signed("<", v, c64(_BIG)))
    if x.dtype == "uint64":  # beyond 2**63 reads as negative
        small = b.and_(small, b.icmp_signed(">=", v, c64(0)))
    return v, small


def _int_fits(b: ir.IRBuilder, v: ir.Value, dtype: str) -> ir.Value:
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -(1 << 63)), min(info.max, (1 << 63) - 1)
    return b.and_(b.icmp_signed(">=", v, c64(lo)), b.icmp_signed("<=", v, c64(hi)))


def build_arange(module: ir.Module, name: str, in_dt: tuple[str, str, str], dtype: str) -> None:
    """``out = numpy.arange(start, stop, step)`` as NumPy computes it: the length from
    ``(stop - start) / step`` in Python's arithmetic (exact integers, or doubles), the
    first two values converted from ``start`` and ``start + step``, then
    ``out[i] = out[0] + i * (out[1] - out[0])`` in the output dtype."""
    fn, b, (p0, p1, p2, po) = new_kernel(module, name, 4)
    xs = [Arr(b, p, d, 0) for p, d in zip((p0, p1, p2), in_dt)]
    out = Arr(b, po, dtype, 1)
    n_out = out.dims[0]
    ty = mem_type(dtype)
    if is_float(in_dt[0]):
        start, stop, step = (x.load(c64(0)) for x in xs)
        start, stop, step = (v if v.type == F64 else b.fpext(v, F64) for v in (start, stop, step))
        diff = b.fsub(stop, start)
        val = b.fdiv(diff, step)
        val = b.select(b.fcmp_ordered("==", diff, ir.Constant(F64, 0.0)), ir.Constant(F64, 0.0), val)
        ceil = b.call(intrinsic(b.module, "llvm.ceil.f64", F64, [F64]), [val])
        ok = b.and_(b.fcmp_ordered("!=", step, ir.Constant(F64, 0.0)),
                    b.fcmp_ordered("<", b.call(intrinsic(b.module, "llvm.fabs.f64", F64, [F64]), [ceil]),
                                   ir.Constant(F64, float(_MAX_LEN))))
        length = b.fptosi(b.select(ok, ceil, ir.Constant(F64, 0.0)), I64)
        first, second = start, b.fadd(start, step)
        conv = (lambda v: v) if ty == F64 else (lambda v: b.fptrunc(v, ty))
    else:
        (start, ok0), (stop, ok1), (step, ok2) = (_as_i64(b, x) for x in xs)
        ok = b.and_(b.and_(ok0, ok1), b.and_(ok2, b.icmp_signed("!=", step, c64(0))))
        safe_step = b.select(ok, step, c64(1))
        diff = b.select(ok, b.sub(stop, start), c64(0))
        q, r = b.sdiv(diff, safe_step), b.srem(diff, safe_step)
        up = b.and_(b.icmp_signed("!=", r, c64(0)), b.icmp_signed(">=", b.xor(r, safe_step), c64(0)))
        length = b.select(up, b.add(q, c64(1)), q)
        first, second = start, b.add(start, safe_step)
        if is_float(dtype):
            conv = (lambda v: b.sitofp(v, F64)) if ty == F64 else (lambda v: b.fptrunc(b.sitofp(v, F64), ty))
        else:
            some, many = b.icmp_signed(">", length, c64(0)), b.icmp_signed(">", length, c64(1))
            # NumPy raises OverflowError storing a first value that does not fit the dtype.
            ok = b.and_(ok, b.or_(b.not_(some), _int_fits(b, first, dtype)))
            ok = b.and_(ok, b.or_(b.not_(many), _int_fits(b, second, dtype)))
            conv = (lambda v: v) if ty == I64 else (lambda v: b.trunc(v, ty))
    length = b.select(b.icmp_signed("<", length, c64(0)), c64(0), length)
    _refuse_unless(b, b.and_(ok, b.icmp_signed("==", length, n_out)))
    v0, v1 = conv(first), conv(second)
    fstride = out.strides[0]
    with b.if_then(b.icmp_signed(">", n_out, c64(0))):
        b.store(v0, out.ptr(c64(0)))
    with b.if_then(b.icmp_signed(">", n_out, c64(1))):
        b.store(v1, out.ptr(fstride))
    if is_float(dtype):
        delta = b.fsub(v1, v0)
        for_range(b, n_out, lambda i: b.store(b.fadd(v0, b.fmul(b.sitofp(i, ty), delta)),
                                               out.ptr(b.mul(i, fstride))), start=c64(2))
    else:
        w0 = v0 if ty == I64 else b.sext(v0, I64)
        delta = b.sub(second if ty == I64 else b.sext(v1, I64), w0)
        for_range(b, n_out, lambda i: b.store(conv(b.add(w0, b.mul(i, delta))), out.ptr(b.mul(i, fstride))),
                  start=c64(2))
    b.ret(ir.Constant(I32, 0))


def _arange_length(start: Any, stop: Any, step: Any) -> int | None:
    """NumPy's length of ``arange(start, stop, step)``, None where it raises."""
    try:
        diff = stop - start
        n = math.ceil(diff / step if diff != 0 else 0)
    except (ZeroDivisionError, ValueError, OverflowError):
        return None
    return None if step == 0 or n >= _MAX_LEN else max(n, 0)


@register_lowering(ARange)
def lower_arange(node: Apply) -> NativeNode | None:
    dtype = node.outputs[0].dtype
    in_dt = tuple(v.dtype for v in node.inputs)
    kinds = {np.dtype(d).kind for d in in_dt}
    ok_in = kinds == {"f"} and is_float(dtype) or kinds <= {"i", "u"} and np.dtype(dtype).kind in "iuf"
    if not ok_in or dtype == "float16" or any(d == "float16" for d in in_dt):
        return None
    name = kernel_id("gcarange", in_dt, dtype)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1, 2)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            a, z, d = get(values)
            n = _arange_length(a.item(), z.item(), d.item())
            if n is None:
                return run_node(node, values)  # the reference's error
            out = alloc((n,))
            if cfunc(0, 0, a, z, d, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 4, lambda m: build_arange(m, name, in_dt, dtype), runner)
