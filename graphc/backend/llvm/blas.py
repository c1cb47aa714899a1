"""BLAS from native code: Dot, Gemm and MatMul kernels call sgemm/dgemm (sgemv/dgemv for
matrix-vector products) directly.

Where the BLAS comes from, and how kernels reach it: graphc.backend.llvm.blas_source.

Skinny products of a middle size (one dimension <= 16, about 2^20..2^24 multiply-adds)
run natively instead (graphc.backend.llvm.small_gemm: measured faster than OpenBLAS
splitting them over its threads); each kernel tries that function first, after the
layout checks below.

Row-major ``C = A @ B`` is the column-major ``C^T = B^T A^T``: operands are passed
swapped, each as 'N' when it is row-major (unit stride along its columns) and as 'T'
when it is column-major (a transposed view), so transposes cost no copy. Operands with
neither layout (negative or two non-unit strides), empty dimensions and sizes beyond
32-bit ints make the kernel refuse; the reference then computes the product.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from llvmlite.ir.instructions import LoadInstr

from graphc.backend.llvm import blas_source, small_gemm
from graphc.backend.llvm.irutil import I8, I32, I64, PTR, as_callee, intrinsic, reg_type
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
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.linalg import Dot, MatMul
from graphc.rewrite.gemm import Gemm

INT32_MAX = 2**31 - 1


# -- IR ------------------------------------------------------------------------------------
class _EntryPoint(LoadInstr):
    """A function pointer loaded from a cell: llvmlite calls values with a function type."""

    fnty: ir.FunctionType

    @property
    def function_type(self) -> ir.FunctionType:
        return self.fnty


class _Blas:
    """Stack slots for the by-pointer arguments, and the calls."""

    def __init__(self, b: ir.IRBuilder, dtype: str) -> None:
        self.b, self.dtype = b, dtype
        self.fty = reg_type(dtype)
        self.p = "s" if dtype == "float32" else "d"
        self.chars = [entry_alloca(b, I8) for _ in range(2)]
        self.ints = [entry_alloca(b, I32) for _ in range(6)]
        self.one = entry_alloca(b, self.fty)
        self.zero = entry_alloca(b, self.fty)
        b.store(ir.Constant(self.fty, 1.0), self.one)
        b.store(ir.Constant(self.fty, 0.0), self.zero)

    def _fn(self, routine: str, nargs: int) -> ir.Value:
        """The entry point, loaded from its cell; an empty cell makes the kernel refuse."""
        b = self.b
        name = blas_source.symbol(self.p + routine)
        cell = b.module.globals.get(name)
        if cell is None:
            cell = ir.GlobalVariable(b.module, PTR, name)
            cell.linkage = "external"
        fn = b.load(cell, typ=PTR)
        fn.__class__ = _EntryPoint
        fn.fnty = ir.FunctionType(ir.VoidType(), [PTR] * nargs)
        _refuse_unless(b, b.icmp_unsigned("!=", fn, ir.Constant(PTR, None)))
        return fn

    def _int(self, k: int, v: ir.Value) -> ir.Value:
        self.b.store(self.b.trunc(v, I32), self.ints[k])
        return self.ints[k]

    def _char(self, k: int, trans: ir.Value) -> ir.Value:
        self.b.store(self.b.select(trans, ir.Constant(I8, ord("T")), ir.Constant(I8, ord("N"))),
                     self.chars[k])
        return self.chars[k]

    def gemm(self, ta: ir.Value, tb: ir.Value, m: ir.Value, n: ir.Value, k: ir.Value, alpha: ir.Value,
             a: ir.Value, lda: ir.Value, bp: ir.Value, ldb: ir.Value, beta: ir.Value, c: ir.Value,
             ldc: ir.Value) -> None:
        self.b.call(self._fn("gemm", 13), [
            self._char(0, ta), self._char(1, tb), self._int(0, m), self._int(1, n), self._int(2, k),
            alpha, a, self._int(3, lda), bp, self._int(4, ldb), beta, c, self._int(5, ldc)])

    def gemv(self, trans: ir.Value, m: ir.Value, n: ir.Value, alpha: ir.Value, a: ir.Value,
             lda: ir.Value, x: ir.Value, incx: ir.Value, beta: ir.Value, y: ir.Value, incy: ir.Value) -> None:
        self.b.call(self._fn("gemv", 11), [
            self._char(0, trans), self._int(0, m), self._int(1, n), alpha, a, self._int(2, lda),
            x, self._int(3, incx), beta, y, self._int(4, incy)])


class _Mat:
    """A (rows, cols) operand with element strides; its BLAS layout."""

    def __init__(self, b: ir.IRBuilder, rows: ir.Value, cols: ir.Value, s0: ir.Value, s1: ir.Value) -> None:
        self.rows, self.cols = rows, cols
        one = c64(1)
        r1 = b.icmp_signed("<=", rows, one)
        k1 = b.icmp_signed("<=", cols, one)
        ld_row = b.select(r1, _max1(b, cols), s0)
        ld_col = b.select(k1, _max1(b, rows), s1)
        row_ok = b.and_(b.or_(b.icmp_signed("==", s1, one), k1),
                        b.or_(r1, b.icmp_signed(">=", s0, _max1(b, cols))))
        col_ok = b.and_(b.or_(b.icmp_signed("==", s0, one), r1),
                        b.or_(k1, b.icmp_signed(">=", s1, _max1(b, rows))))
        self.trans = b.not_(row_ok)  # 'T' in the swapped (column-major) product
        self.ld = b.select(row_ok, ld_row, ld_col)
        self.ok = b.and_(b.or_(row_ok, col_ok), _fits(b, self.ld, rows, cols))


def _max1(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", v, c64(1)), c64(1), v)


def _fits(b: ir.IRBuilder, *values: ir.Value) -> ir.Value:
    ok = ir.Constant(ir.IntType(1), 1)
    for v in values:
        ok = b.and_(ok, b.icmp_signed("<=", v, c64(INT32_MAX)))
    return ok


def _refuse_unless(b: ir.IRBuilder, ok: ir.Value) -> None:
    fn = b.function
    good = fn.append_basic_block("ok")
    bad = fn.append_basic_block("refuse")
    b.cbranch(ok, good, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, 1))
    b.position_at_end(good)


def _positive(b: ir.IRBuilder, *dims: ir.Value) -> ir.Value:
    ok = ir.Constant(ir.IntType(1), 1)
    for d in dims:
        ok = b.and_(ok, b.icmp_signed(">", d, c64(0)))
    return ok


def _matmul(bl: _Blas, A: _Mat, a: ir.Value, B: _Mat, bp: ir.Value, c: ir.Value, ldc: ir.Value,
            alpha: ir.Value, beta: ir.Value) -> None:
    """``c = alpha * A @ B + beta * c`` for row-major ``c`` with row stride ``ldc``."""
    bl.gemm(B.trans, A.trans, B.cols, A.rows, A.cols, alpha, bp, B.ld, a, A.ld, beta, c, ldc)


def _matvec(bl: _Blas, M: _Mat, m: ir.Value, x: ir.Value, incx: ir.Value, y: ir.Value,
            alpha: ir.Value, beta: ir.Value) -> None:
    """``y = alpha * M @ x + beta * y`` (``y`` contiguous)."""
    b = bl.b
    # Row-major M is the column-major (cols x rows) M^T: transposed gemv.
    fm = b.select(M.trans, M.rows, M.cols)
    fn = b.select(M.trans, M.cols, M.rows)
    bl.gemv(b.not_(M.trans), fm, fn, alpha, m, M.ld, x, incx, beta, y, c64(1))


def _vec_inc(b: ir.IRBuilder, n: ir.Value, s: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(BLAS increment, usable?) of a vector of length ``n`` and element stride ``s``."""
    short = b.icmp_signed("<=", n, c64(1))
    inc = b.select(short, c64(1), s)
    return inc, b.and_(b.icmp_signed(">=", inc, c64(1)), _fits(b, inc, n))


Small = Callable[[ir.Value, int], ir.Value]


def _product(bl: _Blas, A: Arr, ra: int, aoff: ir.Value, B: Arr, rb: int, boff: ir.Value,
             out: ir.Value, alpha: ir.Value, beta: ir.Value, checks: list[ir.Value]
             ) -> tuple[Callable[[], None], Small]:
    """Prepare ``out = alpha * dot(A, B) + beta * out`` (ranks 1 or 2); returns the BLAS call
    and ``small(alpha value, accumulate) -> done?`` (graphc.backend.llvm.small_gemm: ``out
    (+)= alpha * dot(A, B)``, false when it declined), after appending the layout conditions
    to ``checks``."""
    b = bl.b
    one = c64(1)
    # Each operand as an (m, k) / (k, n) matrix with element strides; out as C-contiguous (m, n).
    if ra == 2:
        ma, sa = (A.dims[0], A.dims[1]), (A.strides[0], A.strides[1])
    else:
        ma, sa = (one, A.dims[0]), (one, A.strides[0])
    if rb == 2:
        mb, sb = (B.dims[0], B.dims[1]), (B.strides[0], B.strides[1])
    else:
        mb, sb = (B.dims[0], one), (B.strides[0], one)
    pa, pb, dtype = A.ptr(aoff), B.ptr(boff), A.dtype

    def small(alpha_value: ir.Value, accumulate: int) -> ir.Value:
        return _small(b, dtype, ma[0], mb[1], ma[1], alpha_value, pa, sa, pb, sb, out, (mb[1], one),
                      accumulate)

    if ra == 2 and rb == 2:
        ma_, mb_ = _Mat(b, A.dims[0], A.dims[1], A.strides[0], A.strides[1]), \
            _Mat(b, B.dims[0], B.dims[1], B.strides[0], B.strides[1])
        checks += [ma_.ok, mb_.ok, _positive(b, A.dims[0], A.dims[1], B.dims[1]), _fits(b, B.dims[1])]
        return lambda: _matmul(bl, ma_, pa, mb_, pb, out, _max1(b, B.dims[1]), alpha, beta), small
    if ra == 2:  # (m, k) @ (k,)
        m = _Mat(b, A.dims[0], A.dims[1], A.strides[0], A.strides[1])
        inc, ok = _vec_inc(b, B.dims[0], B.strides[0])
        x = B.ptr(boff)
    elif rb == 2:  # (k,) @ (k, n) = B^T @ a
        m = _Mat(b, B.dims[1], B.dims[0], B.strides[1], B.strides[0])
        inc, ok = _vec_inc(b, A.dims[0], A.strides[0])
        x = A.ptr(aoff)
        A, aoff = B, boff
    else:  # (k,) . (k,): a as a (1, k) matrix
        m = _Mat(b, c64(1), A.dims[0], c64(0), A.strides[0])
        inc, ok = _vec_inc(b, B.dims[0], B.strides[0])
        x = B.ptr(boff)
    checks += [m.ok, ok, _positive(b, m.rows, m.cols)]
    mp = A.ptr(aoff)
    return lambda: _matvec(bl, m, mp, x, inc, out, alpha, beta), small


def _small(b: ir.IRBuilder, dtype: str, m: ir.Value, n: ir.Value, k: ir.Value, alpha: ir.Value, a: ir.Value,
           sa: tuple[ir.Value, ir.Value], bp: ir.Value, sb: tuple[ir.Value, ir.Value], c: ir.Value,
           sc: tuple[ir.Value, ir.Value], accumulate: int) -> ir.Value:
    """Call the native small product through its cell; true when it computed the product
    (false: the cell is empty, or it declined these shapes)."""
    name = small_gemm.symbol(dtype)
    cell = b.module.globals.get(name)
    if cell is None:
        cell = ir.GlobalVariable(b.module, PTR, name)
        cell.linkage = "external"
    fp = b.load(cell, typ=PTR)
    done = entry_alloca(b, ir.IntType(1))
    b.store(ir.Constant(ir.IntType(1), 0), done)
    with b.if_then(b.icmp_unsigned("!=", fp, ir.Constant(PTR, None))):
        rc = b.call(as_callee(fp, small_gemm.signature(dtype)),
                    [m, n, k, alpha, a, sa[0], sa[1], bp, sb[0], sb[1], c, sc[0], sc[1],
                     ir.Constant(I32, accumulate)])
        b.store(b.icmp_signed("==", rc, ir.Constant(I32, 0)), done)
    return b.load(done, typ=ir.IntType(1))


def _build_dot(module: ir.Module, name: str, dtype: str, ra: int, rb: int) -> None:
    fn, b, (pa, pb, po) = new_kernel(module, name, 3)
    bl = _Blas(b, dtype)
    A, B, O = Arr(b, pa, dtype, ra), Arr(b, pb, dtype, rb), Arr(b, po, dtype, ra + rb - 2)
    checks: list[ir.Value] = []
    call, small = _product(bl, A, ra, c64(0), B, rb, c64(0), O.data, bl.one, bl.zero, checks)
    ok = checks[0]
    for c in checks[1:]:
        ok = b.and_(ok, c)
    _refuse_unless(b, ok)
    with b.if_then(b.not_(small(ir.Constant(bl.fty, 1.0), 0))):
        call()
    b.ret(ir.Constant(I32, 0))


def _build_gemm(module: ir.Module, name: str, dtype: str, ra: int, rb: int) -> None:
    fn, b, (pc, palpha, pa, pb, pbeta, po) = new_kernel(module, name, 6)
    bl = _Blas(b, dtype)
    rank = ra + rb - 2
    C, O = Arr(b, pc, dtype, rank), Arr(b, po, dtype, rank)
    A, B = Arr(b, pa, dtype, ra), Arr(b, pb, dtype, rb)
    alpha, beta = Arr(b, palpha, dtype, 0).data, Arr(b, pbeta, dtype, 0).data
    checks: list[ir.Value] = []
    call, small = _product(bl, A, ra, c64(0), B, rb, c64(0), O.data, alpha, bl.one, checks)
    ok = checks[0]
    for c in checks[1:]:
        ok = b.and_(ok, c)
    _refuse_unless(b, ok)
    # out = beta * C (broadcast) first, then BLAS adds alpha * A @ B onto it (its beta = 1).
    bv = b.load(beta, typ=bl.fty)
    ostr = []
    acc = c64(1)
    for d in reversed(range(rank)):
        ostr.insert(0, acc)
        acc = b.mul(acc, O.dims[d])
    # Updated in place (graphc.backend.llvm.plan: C is the output, beta 1): nothing to copy.
    same = b.and_(b.icmp_unsigned("==", b.ptrtoint(C.data, I64), b.ptrtoint(O.data, I64)),
                  b.fcmp_ordered("==", bv, ir.Constant(bl.fty, 1.0)))
    for d in range(rank):
        same = b.and_(same, b.and_(b.icmp_signed("==", C.dims[d], O.dims[d]),
                                   b.icmp_signed("==", C.strides[d], ostr[d])))
    with b.if_then(b.not_(same)):
        _scaled_copy(b, name, C, O, rank, bv, ostr)
    with b.if_then(b.not_(small(b.load(alpha, typ=bl.fty), 1))):
        call()
    b.ret(ir.Constant(I32, 0))


def _scaled_copy(b: ir.IRBuilder, name: str, C: Arr, O: Arr, rank: int, bv: ir.Value,
                 ostr: list[ir.Value]) -> None:
    """O = beta * C (C broadcast to O's dims, O C-contiguous): rows as one memcpy each when
    beta is 1 and C's rows are contiguous (bias rows, a copied weight), else a scalar loop
    the vectorizer leaves alone (vectorized, this loop cost ~19 of the gemm kernel's ~42 ms
    of compile time, for a copy O(m*n) next to BLAS's O(m*n*k))."""
    cstr = [C.bstride(d) for d in range(rank)]
    if rank == 0:
        O.store(b.fmul(bv, C.load(c64(0))), c64(0))
        return
    size = c64(np.dtype(C.dtype).itemsize)
    memcpy = intrinsic(b.module, "llvm.memcpy.p0.p0.i64", ir.VoidType(), [PTR, PTR, I64, ir.IntType(1)])

    n = O.dims[rank - 1]

    def rows(offs: list[ir.Value]) -> None:
        b.call(memcpy, [O.ptr(offs[1]), C.ptr(offs[0]), b.mul(n, size), ir.Constant(ir.IntType(1), 0)])

    def scaled(offs: list[ir.Value]) -> None:
        _scalar_loop(b, name, n, lambda j: O.store(
            b.fmul(bv, C.load(b.add(offs[0], b.mul(j, cstr[rank - 1])))), b.add(offs[1], j)))

    plain = b.and_(b.fcmp_ordered("==", bv, ir.Constant(bv.type, 1.0)),
                   b.icmp_signed("==", cstr[rank - 1], c64(1)))
    outer = (O.dims[:rank - 1], [cstr[:rank - 1], ostr[:rank - 1]], [c64(0), c64(0)])
    with b.if_else(plain) as (then, other):
        with then:
            nest(b, *outer, rows)
        with other:
            nest(b, *outer, scaled)


def _scalar_loop(b: ir.IRBuilder, name: str, n: ir.Value, body: Callable[[ir.Value], None]) -> None:
    """``for j in range(n): body(j)`` marked llvm.loop.vectorize.enable=false (a loop ID
    of its own: self-referential metadata, unique per kernel)."""
    m = b.module
    off = m.add_metadata([ir.MetaDataString(m, "llvm.loop.vectorize.enable"), ir.Constant(ir.IntType(1), 0)])
    tag = m.add_metadata([ir.MetaDataString(m, "graphc.loop"), ir.MetaDataString(m, name)])
    loop_id = m.add_metadata([off, tag])
    loop_id.operands = (loop_id, *loop_id.operands)
    pre = b.block
    head = b.append_basic_block("copy")
    after = b.append_basic_block("copied")
    b.cbranch(b.icmp_signed("<", c64(0), n), head, after)
    b.position_at_end(head)
    j = b.phi(I64, name="j")
    j.add_incoming(c64(0), pre)
    body(j)
    nxt = b.add(j, c64(1), flags=["nsw"])
    j.add_incoming(nxt, b.block)
    latch = b.cbranch(b.icmp_signed("<", nxt, n), head, after)
    latch.set_metadata("llvm.loop", loop_id)
    b.position_at_end(after)


def _build_matmul(module: ir.Module, name: str, dtype: str, ra: int, rb: int) -> None:
    fn, b, (pa, pb, po) = new_kernel(module, name, 3)
    bl = _Blas(b, dtype)
    ro = max(ra, rb)
    A, B, O = Arr(b, pa, dtype, ra), Arr(b, pb, dtype, rb), Arr(b, po, dtype, ro)
    ma = _Mat(b, A.dims[-2], A.dims[-1], A.strides[-2], A.strides[-1])
    mb = _Mat(b, B.dims[-2], B.dims[-1], B.strides[-2], B.strides[-1])
    m, n = O.dims[-2], O.dims[-1]
    _refuse_unless(b, b.and_(b.and_(ma.ok, mb.ok), b.and_(_positive(b, m, n, A.dims[-1]), _fits(b, n))))
    nb = ro - 2
    sa = [A.bstride(d - (ro - ra)) if d >= ro - ra else c64(0) for d in range(nb)]
    sb = [B.bstride(d - (ro - rb)) if d >= ro - rb else c64(0) for d in range(nb)]
    so, acc = [], b.mul(m, n)
    for d in reversed(range(nb)):
        so.insert(0, acc)
        acc = b.mul(acc, O.dims[d])
    one = ir.Constant(bl.fty, 1.0)

    def item(offs: list[ir.Value]) -> None:
        pa, pb, po = A.ptr(offs[0]), B.ptr(offs[1]), O.ptr(offs[2])
        done = _small(b, dtype, m, n, A.dims[-1], one, pa, (A.strides[-2], A.strides[-1]), pb,
                      (B.strides[-2], B.strides[-1]), po, (n, c64(1)), 0)
        with b.if_then(b.not_(done)):
            _matmul(bl, ma, pa, mb, pb, po, n, bl.one, bl.zero)

    nest(b, O.dims[:nb], [sa, sb, so], [c64(0)] * 3, item)
    b.ret(ir.Constant(I32, 0))


# -- lowerings -----------------------------------------------------------------------------
def _prepare(dtype: str) -> bool:
    """Load BLAS (False: not possible here) and bind the native small products of ``dtype``
    (compiled, or loaded from the cache, on the first product a process runs). That first
    product waits for them: a product of given shapes then always takes the same path, so
    results do not depend on how fast a background compile was."""
    if not blas_source.READY and not blas_source.load_blas():
        return False
    small_gemm.ready(dtype, wait=True)
    return True


def _float_dtype(node: Apply) -> str | None:
    dtypes = {v.dtype for v in node.inputs} | {node.outputs[0].dtype}
    if len(dtypes) != 1:
        return None
    (dt,) = dtypes
    return dt if dt in ("float32", "float64") else None


@register_lowering(Dot)
def lower_dot(node: Apply) -> NativeNode | None:
    dtype = _float_dtype(node)
    if dtype is None or not blas_source.blas_present():
        return None
    blas_source.bind_symbols()  # before any module using the symbols is loaded (from the cache too)
    ra, rb = (v.ndim for v in node.inputs)
    name = kernel_id("gcblas_dot", dtype, ra, rb)

    def runner(cfunc: Callable[..., int]) -> Callable[[list[Any]], list[Any]]:
        gate = Gate(node)
        prepared: list[bool] = []
        get, alloc = gate.getter((0, 1)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            if not prepared:
                if not _prepare(dtype):
                    return run_node(node, values)
                prepared.append(True)
            a, b = get(values)
            if a.shape[-1] != b.shape[0]:
                return run_node(node, values)  # raises the reference's error
            out = alloc(a.shape[:-1] + b.shape[1:])
            if cfunc(0, 0, a, b, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 3, lambda m: _build_dot(m, name, dtype, ra, rb), runner)


@register_lowering(Gemm)
def lower_gemm(node: Apply) -> NativeNode | None:
    dtype = _float_dtype(node)
    if dtype is None or not blas_source.blas_present():
        return None
    blas_source.bind_symbols()  # before any module using the symbols is loaded (from the cache too)
    ra, rb = node.inputs[2].ndim, node.inputs[3].ndim
    name = kernel_id("gcblas_gemm", dtype, ra, rb)

    def runner(cfunc: Callable[..., int]) -> Callable[[list[Any]], list[Any]]:
        gate = Gate(node)
        prepared: list[bool] = []
        get, alloc = gate.getter(range(5)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            if not prepared:
                if not _prepare(dtype):
                    return run_node(node, values)
                prepared.append(True)
            c, alpha, a, b, beta = get(values)
            if a.shape[-1] != b.shape[0]:
                return run_node(node, values)
            shape = a.shape[:-1] + b.shape[1:]
            if c.shape != shape and np.broadcast_shapes(c.shape, shape) != shape:
                return run_node(node, values)  # C larger than the product: the reference's case
            out = alloc(shape)
            if cfunc(0, 0, c, alpha, a, b, beta, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 6, lambda m: _build_gemm(m, name, dtype, ra, rb), runner)


@register_lowering(MatMul)
def lower_matmul(node: Apply) -> NativeNode | None:
    dtype = _float_dtype(node)
    if dtype is None or not blas_source.blas_present():
        return None
    blas_source.bind_symbols()  # before any module using the symbols is loaded (from the cache too)
    ra, rb = (v.ndim for v in node.inputs)
    name = kernel_id("gcblas_matmul", dtype, ra, rb)

    def runner(cfunc: Callable[..., int]) -> Callable[[list[Any]], list[Any]]:
        gate = Gate(node)
        prepared: list[bool] = []
        get, alloc = gate.getter((0, 1)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            if not prepared:
                if not _prepare(dtype):
                    return run_node(node, values)
                prepared.append(True)
            a, b = get(values)
            if a.shape[-1] != b.shape[-2]:
                return run_node(node, values)
            try:
                batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            except ValueError:
                return run_node(node, values)
            out = alloc(tuple(batch) + (a.shape[-2], b.shape[-1]))
            if cfunc(0, 0, a, b, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 3, lambda m: _build_matmul(m, name, dtype, ra, rb), runner)



