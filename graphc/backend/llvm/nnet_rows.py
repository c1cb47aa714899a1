"""The row code of graphc.backend.llvm.nnet_kernels: softmax, log-softmax and
CrossentropySoftmax over rows contiguous along the axis, on explicit vectors.

Before, each row ran three scalar-shaped loops (max, exp and sum, scale); the loop
vectorizer only helped rows longer than a vector, and a row of 10 classes (an MLP's
logits) paid a scalar exp, a scalar division and loop overhead per element. Here a row
is a sequence of vectors of ``lanes`` elements (16 on AVX-512 hosts: one register of
float32, two of float64; 8 otherwise) read with masked loads, so the tail never touches
memory past the row. A row of at most ``lanes`` elements is one vector kept in registers
from the load to the store (straight-line code, no loop); a longer row loops over its
vectors, the last one masked. The softmax is the exps times ``1/sum`` (one division per row; within an ulp
of the quotients). Logs of the sums are taken ``lanes`` rows at a time (``Batch``).

Semantics kept: the row maximum is an ordered ``>`` select (vmaxps); a NaN may or may
not reach it, but a NaN element makes its ``exp`` NaN and so the sum, and every output
of the row becomes NaN, as with ``np.max``. Lanes past the row are zeroed before any
sum. float32 sums accumulate in float64 (a lane-wise vector sum per row, then a tree).
The exp and log are graphc's (graphc.backend.llvm.vmath) on vectors: the same values as
the scalar ones."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import jit, vmath
from graphc.backend.llvm.irutil import F64, I1, I32, I64, intrinsic, reg_type
from graphc.backend.llvm.lowering import Arr, c64, entry_alloca, for_range


def vector_bytes() -> int:
    return 64 if "+avx512f" in jit.host_cpu()[1].split(",") else 32


class Lanes:
    """Vectors of ``dtype`` with masked access to contiguous rows of an :class:`Arr`."""

    def __init__(self, b: ir.IRBuilder, dtype: str) -> None:
        self.b, self.dtype = b, dtype
        self.ty = reg_type(dtype)
        self.itemsize = np.dtype(dtype).itemsize
        # 16 lanes on AVX-512 hosts for both dtypes: float64 rows of 9-16 (10 classes) as one
        # two-register vector ran 15-20% faster than as a loop over 8-lane vectors.
        self.n = vector_bytes() // 4
        self.vty = ir.VectorType(self.ty, self.n)
        self.wide = ir.VectorType(F64, self.n)  # float32 sums accumulate in float64

    def splat(self, v: ir.Value) -> ir.Value:
        b, n = self.b, self.n
        one = b.insert_element(ir.Constant(ir.VectorType(v.type, n), ir.Undefined), v, ir.Constant(I32, 0))
        return b.shuffle_vector(one, ir.Constant(one.type, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, n), [0] * n))

    def const(self, value: float) -> ir.Constant:
        return ir.Constant(self.vty, float(value))

    def mask(self, left: ir.Value) -> ir.Value:
        """Lanes ``< left`` (``left >= 1``; all of them from ``n`` up), from the bits of an integer."""
        b, n = self.b, self.n
        full = b.icmp_signed(">=", left, c64(n))
        low = b.sub(b.shl(c64(1), b.select(full, c64(0), left)), c64(1))
        bits = b.trunc(b.select(full, c64(-1), low), ir.IntType(n))
        return b.bitcast(bits, ir.VectorType(I1, n))

    def load(self, arr: Arr, off: ir.Value, mask: ir.Value, passthru: ir.Value) -> ir.Value:
        fn = intrinsic(self.b.module, f"llvm.masked.load.v{self.n}{_sfx(self.ty)}.p0", self.vty,
                       [arr.data.type, I32, mask.type, self.vty])
        return self.b.call(fn, [arr.ptr(off), ir.Constant(I32, self.itemsize), mask, passthru])

    def store(self, arr: Arr, off: ir.Value, v: ir.Value, mask: ir.Value) -> None:
        fn = intrinsic(self.b.module, f"llvm.masked.store.v{self.n}{_sfx(self.ty)}.p0", ir.VoidType(),
                       [self.vty, arr.data.type, I32, mask.type])
        self.b.call(fn, [v, arr.ptr(off), ir.Constant(I32, self.itemsize), mask])

    def vmax(self, x: ir.Value, y: ir.Value) -> ir.Value:
        return self.b.select(self.b.fcmp_ordered(">", x, y), x, y)

    def hmax(self, v: ir.Value) -> ir.Value:
        """The largest lane, halving the vector each step."""
        b = self.b
        k = self.n
        while k > 1:
            k //= 2
            undef = ir.Constant(v.type, ir.Undefined)
            lo = b.shuffle_vector(v, undef, ir.Constant(ir.VectorType(I32, k), list(range(k))))
            hi = b.shuffle_vector(v, undef, ir.Constant(ir.VectorType(I32, k), list(range(k, 2 * k))))
            v = self.vmax(lo, hi)
        return b.extract_element(v, ir.Constant(I32, 0))

    def widen(self, v: ir.Value) -> ir.Value:
        return self.b.fpext(v, self.wide) if self.ty != F64 else v

    def hsum(self, v: ir.Value) -> ir.Value:
        """The sum of a float64 vector's lanes, as a tree (``reassoc``)."""
        fn = intrinsic(self.b.module, f"llvm.vector.reduce.fadd.v{self.n}f64", F64, [F64, self.wide])
        return self.b.call(fn, [ir.Constant(F64, 0.0), v], fastmath=("reassoc",))

    def recip(self, s: ir.Value) -> ir.Value:
        """``1 / s`` for a row sum: the row's exps times it are within an ulp of their
        quotients, and a vector division costs 10-16 cycles per vector (float64 rows of
        100: 1.5x faster)."""
        return self.b.fdiv(ir.Constant(self.ty, 1.0), s)

    def narrow(self, s: ir.Value) -> ir.Value:
        return self.b.fptrunc(s, self.ty) if self.ty != F64 else s

    def chunks(self, count: ir.Value, body: Callable[[ir.Value, ir.Value], None]) -> None:
        """``body(first, mask)`` for each vector of a row of ``count`` elements."""
        b, n = self.b, self.n
        nvec = b.udiv(b.add(count, c64(n - 1)), c64(n))

        def one(i: ir.Value) -> None:
            first = b.mul(i, c64(n))
            body(first, self.mask(b.sub(count, first)))

        for_range(b, nvec, one)


def _sfx(ty: ir.Type) -> str:
    return "f64" if ty == F64 else "f32"


class RowStats:
    """A row's maximum ``m``, its float64 sum of ``exp(x - m)`` narrowed to ``s``, and, for
    a short row, its exps ``e`` (zero past the row) with their ``mask``."""

    def __init__(self, m: ir.Value, s: ir.Value, e: ir.Value | None = None, mask: ir.Value | None = None
                 ) -> None:
        self.m, self.s, self.e, self.mask = m, s, e, mask


def short_row(L: Lanes, x: Arr, xo: ir.Value, count: ir.Value) -> RowStats:
    """Statistics of a row of ``1 <= count <= L.n`` elements at ``xo``: one masked load."""
    b = L.b
    mask = L.mask(count)
    v = L.load(x, xo, mask, L.const(float("-inf")))
    m = L.hmax(v)
    # Lanes past the row take exp(0): exp(-inf) would go through a subnormal (a slow
    # microcode assist per row on Intel cores).
    e = vmath.call_math(b, "exp", b.select(mask, b.fsub(v, L.splat(m)), L.const(0.0)))
    e = b.select(mask, e, L.const(0.0))
    return RowStats(m, L.narrow(L.hsum(L.widen(e))), e, mask)


def long_row(L: Lanes, x: Arr, xo: ir.Value, count: ir.Value, keep: tuple[Arr, ir.Value] | None) -> RowStats:
    """Statistics of a row of any length at ``xo``, a loop over its vectors; ``keep``:
    an array and offset where ``exp(x - m)`` is stored."""
    b = L.b
    acc = entry_alloca(b, L.vty)
    b.store(L.const(float("-inf")), acc)
    L.chunks(count, lambda j, mk: b.store(
        L.vmax(b.load(acc, typ=L.vty), L.load(x, b.add(xo, j), mk, L.const(float("-inf")))), acc))
    m = L.hmax(b.load(acc, typ=L.vty))
    mv = L.splat(m)
    total = entry_alloca(b, L.wide)
    b.store(ir.Constant(L.wide, 0.0), total)

    def expsum(j: ir.Value, mk: ir.Value) -> None:
        e = vmath.call_math(b, "exp", b.fsub(L.load(x, b.add(xo, j), mk, mv), mv))
        e = b.select(mk, e, L.const(0.0))
        if keep is not None:
            L.store(keep[0], b.add(keep[1], j), e, mk)
        b.store(b.fadd(b.load(total, typ=L.wide), L.widen(e)), total)

    L.chunks(count, expsum)
    return RowStats(m, L.narrow(L.hsum(b.load(total, typ=L.wide))))


def row_stats(L: Lanes, x: Arr, xo: ir.Value, count: ir.Value,
              softmax: tuple[Arr, ir.Value] | None) -> tuple[ir.Value, ir.Value]:
    """(max, sum of exp(x - max)) of a row of ``count >= 1`` elements; ``softmax``: an array
    and offset where the row's softmax is written. A row of one vector is straight-line
    code (its exps stay in registers), a longer one loops."""
    b = L.b
    slots = entry_alloca(b, L.ty, 2)
    mslot, sslot = slots, b.gep(slots, [c64(1)], source_etype=L.ty)
    with b.if_else(b.icmp_signed("<=", count, c64(L.n))) as (one, more):
        with one:
            st = short_row(L, x, xo, count)
            if softmax is not None:
                L.store(softmax[0], softmax[1], b.fmul(st.e, L.splat(L.recip(st.s))), st.mask)
            b.store(st.m, mslot)
            b.store(st.s, sslot)
        with more:
            st = long_row(L, x, xo, count, softmax)
            if softmax is not None:
                arr, off = softmax
                rv = L.splat(L.recip(st.s))
                L.chunks(count, lambda j, mk: L.store(
                    arr, b.add(off, j), b.fmul(L.load(arr, b.add(off, j), mk, rv), rv), mk))
            b.store(st.m, mslot)
            b.store(st.s, sslot)
    return b.load(mslot, typ=L.ty), b.load(sslot, typ=L.ty)


Finish = Callable[[list[ir.Value], ir.Value, ir.Value], None]


class Batch:
    """Rows waiting for the log of their sums: their offsets, maxima and sums are kept until
    ``L.n`` rows (or the last row) are in, then one vector log serves them all and
    ``finish(offsets, max, log(sum))`` runs for each. A scalar log per row was half the
    time of a short row: its latency chain at the end of each row did not overlap."""

    def __init__(self, L: Lanes, noffs: int, rows: ir.Value, finish: Finish) -> None:
        b = L.b
        self.L, self.noffs, self.rows, self.finish = L, noffs, rows, finish
        self.m, self.s = entry_alloca(b, L.ty, L.n), entry_alloca(b, L.ty, L.n)
        self.svec = b.bitcast(self.s, L.vty.as_pointer())  # the sums as one vector
        self.offs = entry_alloca(b, I64, L.n * noffs)
        self.count, self.done = entry_alloca(b, I64), entry_alloca(b, I64)
        b.store(c64(0), self.count)
        b.store(c64(0), self.done)

    def _at(self, buf: ir.Value, ty: ir.Type, i: ir.Value) -> ir.Value:
        return self.L.b.gep(buf, [i], source_etype=ty)

    def push(self, offs: list[ir.Value], m: ir.Value, s: ir.Value) -> None:
        L, b = self.L, self.L.b
        k = b.load(self.count, typ=I64)
        b.store(m, self._at(self.m, L.ty, k))
        b.store(s, self._at(self.s, L.ty, k))
        for i, o in enumerate(offs):
            b.store(o, self._at(self.offs, I64, b.add(b.mul(k, c64(self.noffs)), c64(i))))
        count = b.add(k, c64(1))
        done = b.add(b.load(self.done, typ=I64), c64(1))
        b.store(count, self.count)
        b.store(done, self.done)
        full = b.or_(b.icmp_signed("==", count, c64(L.n)), b.icmp_signed("==", done, self.rows))
        with b.if_then(full):
            sv = b.load(self.svec, typ=L.vty, align=L.itemsize)
            ls = vmath.call_math(b, "log", b.select(L.mask(count), sv, L.const(1.0)))
            b.store(ls, self.svec, align=L.itemsize)  # the sums are not needed any more

            def one(r: ir.Value) -> None:
                base = b.mul(r, c64(self.noffs))
                offs = [b.load(self._at(self.offs, I64, b.add(base, c64(i))), typ=I64)
                        for i in range(self.noffs)]
                self.finish(offs, b.load(self._at(self.m, L.ty, r), typ=L.ty),
                            b.load(self._at(self.s, L.ty, r), typ=L.ty))

            for_range(b, count, one)
            b.store(c64(0), self.count)


def _unit(b: ir.IRBuilder, stride: ir.Value, n: ir.Value) -> ir.Value:
    return b.or_(b.icmp_signed("==", stride, c64(1)), b.icmp_signed("==", n, c64(1)))


def require_contiguous(b: ir.IRBuilder, n: ir.Value, *strides: ir.Value) -> None:
    """Return status 2 (the reference runs) unless rows ``strides`` apart along the axis are
    contiguous (unit stride, or one element). The runners make them so first (a NumPy
    copy): a second, strided version of the row code in every kernel cost more compile
    time than the whole vector path (LLVM expands strided vector loads into scalar ones)."""
    ok = _unit(b, strides[0], n)
    for s in strides[1:]:
        ok = b.and_(ok, _unit(b, s, n))
    with b.if_then(b.not_(ok), likely=False):
        b.ret(ir.Constant(I32, 2))


def softmax_rows(b: ir.IRBuilder, x: Arr, out: Arr, n: ir.Value, log: bool, nrows: ir.Value,
                 rows: Callable[[Callable[[list[ir.Value]], None]], None]) -> None:
    """Softmax or log-softmax of ``nrows`` contiguous rows of ``n >= 1`` elements;
    ``rows(body)`` runs ``body([x offset, out offset])`` for every row."""
    L = Lanes(b, x.dtype)
    if not log:
        def plain(offs: list[ir.Value]) -> None:
            row_stats(L, x, offs[0], n, (out, offs[1]))

        rows(plain)
        return

    def finish(offs: list[ir.Value], m: ir.Value, ls: ir.Value) -> None:
        xo, oo = offs
        mv, lv = L.splat(m), L.splat(ls)
        L.chunks(n, lambda j, mk: L.store(
            out, b.add(oo, j), b.fsub(b.fsub(L.load(x, b.add(xo, j), mk, mv), mv), lv), mk))

    batch = Batch(L, 2, nrows, finish)
    rows(lambda offs: batch.push(offs, *row_stats(L, x, offs[0], n, None)))


def xent_rows(b: ir.IRBuilder, x: Arr, t: Arr, loss: Arr, sm: Arr, n: ir.Value,
              rows: Callable[[Callable[[list[ir.Value]], None]], None],
              label_loss: Callable[[ir.Value, ir.Value, ir.Value, ir.Value, ir.Value], None] | None) -> None:
    """CrossentropySoftmax of contiguous rows (dense targets' rows too, or broadcast along
    the rows); ``rows(body)`` runs ``body([x, t, loss, sm offsets])`` for every row. With
    labels, ``label_loss(x offset, label offset, loss offset, max, log(sum))`` checks a
    label and writes its loss."""
    L = Lanes(b, x.dtype)
    zero = L.const(0.0)
    acc = entry_alloca(b, L.wide)

    def finish(offs: list[ir.Value], m: ir.Value, ls: ir.Value) -> None:
        xo, to, lo, _ = offs
        if label_loss is not None:
            label_loss(xo, to, lo, m, ls)
            return
        b.store(ir.Constant(L.wide, 0.0), acc)
        mv, lv = L.splat(m), L.splat(ls)

        def weigh(j: ir.Value, mk: ir.Value) -> None:
            shifted = b.fsub(L.load(x, b.add(xo, j), mk, mv), mv)
            term = b.fmul(L.load(t, b.add(to, j), mk, zero), b.fsub(lv, shifted))
            b.store(b.fadd(b.load(acc, typ=L.wide), L.widen(b.select(mk, term, zero))), acc)

        L.chunks(n, weigh)
        loss.store(L.narrow(L.hsum(b.load(acc, typ=L.wide))), lo)

    batch = Batch(L, 4, x.dims[0], finish)
    rows(lambda offs: batch.push(offs, *row_stats(L, x, offs[0], n, (sm, offs[3]))))
