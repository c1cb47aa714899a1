"""Native small and skinny matrix products: one function per dtype, compiled once per process.

``C (m x n) = alpha * A (m x k) @ B (k x n) [+ C]`` with one small dimension (<= SMALL)
and m*n*k in [MIN_WORK, MAX_WORK): there SciPy's OpenBLAS splits the product over its
threads, whose synchronization costs more than the product: the W3 step's three skinny
products (10 output columns, a depth of 10, or 10 output rows; 2^20.3 multiply-adds
each) took 37-40, 53-70 and 50-56 us per call through sgemm, and take 26-31 us each
here (measured under load, one thread). The Dot, Gemm and MatMul kernels
(graphc.backend.llvm.blas) call ``graphc_small_sgemm`` / ``graphc_small_dgemm`` first
(through a cell holding the address, like the BLAS routines) and call BLAS when it
declines (status 1) or the cell is empty.

Two loop forms, each given element strides of A, B and C (so both a row-major array and
a transposed view are read in place, and the product can be computed transposed,
``C^T = B^T A^T``, by swapping operands and strides):

* *dots* (few output columns, ``n <= SMALL``, A unit-stride along k, k not small): each
  output is a dot product along k, vectorized along k; blocks of 4 rows x 2 columns
  give 8 independent chains. B's columns are copied into a k-contiguous buffer in
  chunks of k (unless B already is a transposed view).
* *rows* (everything else that qualifies): vectorized along the output's columns,
  blocks of 4 rows x 2 vectors (8 chains), A's elements broadcast. B's panels (k chunk
  x 2 vectors) are copied into a buffer when B is not unit-stride along its columns.
  Which orientation (C or C^T) is chosen by a cost estimate (vector lanes used, scalar
  writes into a strided C, copies).

Rows and columns past the edge of a block repeat the last valid one (loads stay in
bounds) and are not written; partial vectors use masked loads and stores (only there:
a masked load costs a uop on the FMA ports). Vectors start at the 64-byte boundary at
or before the data (NumPy's buffers are 16-byte aligned; split loads cost ~1.5x), the
lanes before it masked off. Nothing
here reads or writes outside ``A[i*sa0 + p*sa1]``, ``B[p*sb0 + j*sb1]``,
``C[i*so0 + j*so1]`` for ``i < m, p < k, j < n``, whatever the strides.

The module is compiled (or loaded from the compile cache) in a thread started by the first
product a process runs, not while compiling functions, and that product waits for it
(graphc.backend.llvm.blas): which path a product takes never depends on timing, so
results are reproducible. ``GRAPHC_SMALL_GEMM=0`` leaves the cells empty (A/B measurements).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I1, I32, I64, PTR, intrinsic, reg_type

SMALL = 16  # a dimension up to this is small
# m*n*k in [MIN_WORK, MAX_WORK): measured (AVX-512, 2 cores, SciPy's OpenBLAS 0.3): below,
# OpenBLAS runs these single-threaded with small-matrix kernels faster than ours (W4's
# products by ~0.1 us each, 64-256 x 64-128 x 10 by 1.5-2x); from its threading threshold
# (2^18) up it splits them over threads, and from ~2^20 the synchronization costs more
# than the product (256x512x10: 37-77 us against ~29); far above, output-bound products
# gain from its two threads (4096x10x512: 443 against 1180 us).
# The function reads them from a named cell at each call (tests widen them: ``set_limits``).
MIN_WORK, MAX_WORK = 2.0 ** 20, 2.0 ** 24
LIMITS = "graphc_small_gemm_limits"
_LIMITS = (ctypes.c_double * 2)(MIN_WORK, MAX_WORK)
BUF_BYTES = 33 * 1024  # packing buffer (stack): 512 floats of k for 16 columns, and room to shift
RB, CB = 4, 2  # rows form: 4 rows x 2 vectors of accumulators
DB_ROWS, DB_COLS = 4, 2  # dots form: 4 rows x 2 columns
OPT = -1  # jit.LIGHT: the loops are written vectorized

_P = {"float32": "s", "float64": "d"}
_lock = threading.Lock()
_CELLS = {dt: ctypes.c_void_p(0) for dt in _P}
_state: dict[str, object] = {}


def symbol(dtype: str) -> str:
    """The external cell kernels load the entry point of ``dtype``'s function from."""
    return f"graphc_small_{_P[dtype]}gemm"


def _impl_name(dtype: str) -> str:
    return f"gc_small_{_P[dtype]}gemm_impl"


def signature(dtype: str) -> ir.FunctionType:
    """``i32 (m, n, k, T alpha, A, sa0, sa1, B, sb0, sb1, C, sc0, sc1, i32 accumulate)``:
    0 when done, 1 when declined (nothing written)."""
    t = reg_type(dtype)
    return ir.FunctionType(I32, [I64, I64, I64, t, PTR, I64, I64, PTR, I64, I64, PTR, I64, I64, I32])


def enabled() -> bool:
    return os.environ.get("GRAPHC_SMALL_GEMM", "1") != "0"


# -- IR helpers ------------------------------------------------------------------------------
def _c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def _min(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


def _loop(b: ir.IRBuilder, n: ir.Value, body: Callable[..., Sequence[ir.Value]],
          init: Sequence[ir.Value] = (), step: int = 1, start: ir.Value | None = None) -> list[ir.Value]:
    """``for i in range(start, n, step): vals = body(i, *vals)``; returns the final ``vals``."""
    fn = b.function
    pre = b.block
    head = fn.append_basic_block("head")
    loop = fn.append_basic_block("body")
    after = fn.append_basic_block("after")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name="i")
    i.add_incoming(_c(0) if start is None else start, pre)
    phis = []
    for v in init:
        p = b.phi(v.type)
        p.add_incoming(v, pre)
        phis.append(p)
    b.cbranch(b.icmp_signed("<", i, n), loop, after)
    b.position_at_end(loop)
    out = body(i, *phis) if init else (body(i), ())[1]
    i.add_incoming(b.add(i, _c(step)), b.block)
    for p, v in zip(phis, out):
        p.add_incoming(v, b.block)
    b.branch(head)
    b.position_at_end(after)
    return phis


class _Vec:
    """Vector helpers for one element type: L lanes of 64 bytes."""

    def __init__(self, b: ir.IRBuilder, dtype: str) -> None:
        self.b = b
        self.t = reg_type(dtype)
        self.size = np.dtype(dtype).itemsize
        self.lanes = 64 // self.size
        self.vt = ir.VectorType(self.t, self.lanes)
        self.mt = ir.VectorType(I1, self.lanes)
        self.iota = ir.Constant(ir.VectorType(I32, self.lanes), list(range(self.lanes)))
        sfx = f"v{self.lanes}f{self.size * 8}"
        m = b.module
        self._mload = intrinsic(m, f"llvm.masked.load.{sfx}.p0", self.vt, [PTR, I32, self.mt, self.vt])
        self._mstore = intrinsic(m, f"llvm.masked.store.{sfx}.p0", ir.VoidType(),
                                 [self.vt, PTR, I32, self.mt])
        self._fma = intrinsic(m, f"llvm.fmuladd.{sfx}", self.vt, [self.vt] * 3)
        self.zero = ir.Constant(self.vt, [0.0] * self.lanes)

    def splat(self, x: ir.Value) -> ir.Value:
        b = self.b
        v = b.insert_element(ir.Constant(self.vt, ir.Undefined), x, ir.Constant(I32, 0))
        return b.shuffle_vector(v, ir.Constant(self.vt, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes))

    def _clamped_splat(self, x: ir.Value) -> ir.Value:
        b = self.b
        c = b.select(b.icmp_signed("<", x, _c(0)), _c(0), _min(b, x, _c(self.lanes)))
        vi = ir.VectorType(I32, self.lanes)
        cv = b.insert_element(ir.Constant(vi, ir.Undefined), b.trunc(c, I32), ir.Constant(I32, 0))
        return b.shuffle_vector(cv, ir.Constant(vi, ir.Undefined), ir.Constant(vi, [0] * self.lanes))

    def mask(self, count: ir.Value, first: ir.Value | None = None) -> ir.Value:
        """Lanes ``first <= lane < count`` (any i64s, also negative or past the width)."""
        b = self.b
        m = b.icmp_unsigned("<", self.iota, self._clamped_splat(count))
        if first is not None:
            m = b.and_(m, b.icmp_unsigned(">=", self.iota, self._clamped_splat(first)))
        return m

    def misalignment(self, p: ir.Value) -> ir.Value:
        """Elements from the last 64-byte boundary to ``p`` (0 when ``p`` is not element-aligned)."""
        b = self.b
        off = b.and_(b.ptrtoint(p, I64), _c(63))
        whole = b.icmp_signed("==", b.urem(off, _c(self.size)), _c(0))
        return b.select(whole, b.udiv(off, _c(self.size)), _c(0))

    def load(self, p: ir.Value, mask: ir.Value | None) -> ir.Value:
        """A vector at ``p``; lanes off in ``mask`` read nothing and are 0. Masked loads cost
        an extra uop on the FMA ports: only tails use them."""
        if mask is None:
            return self.b.load(p, typ=self.vt, align=self.size)
        return self.b.call(self._mload, [p, ir.Constant(I32, self.size), mask, self.zero])

    def store(self, v: ir.Value, p: ir.Value, mask: ir.Value | None) -> None:
        if mask is None:
            self.b.store(v, p, align=self.size)
        else:
            self.b.call(self._mstore, [v, p, ir.Constant(I32, self.size), mask])

    def fma(self, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
        return self.b.call(self._fma, [x, y, z])

    def hsum(self, v: ir.Value) -> ir.Value:
        b = self.b
        w = self.lanes
        while w > 1:
            w //= 2
            lo = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, w), list(range(w))))
            hi = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, w), list(range(w, 2 * w))))
            v = b.fadd(lo, hi)
        return b.extract_element(v, ir.Constant(I32, 0))

    def hsums(self, vecs: Sequence[ir.Value]) -> ir.Value:
        """The lane sums of ``vecs`` (a power of two of them, at most the lane count) as one
        vector, sum k in lane k: pairs of vectors are folded into one at each level (half the
        shuffles and adds of reducing each alone)."""
        b, w = self.b, self.lanes
        vals, seg = list(vecs), w  # each vector holds w // seg segments of seg partial sums

        def idx(half: int, second: int, other: int) -> list[int]:
            return [other + g * seg + second * half + t for g in range(w // seg) for t in range(half)]

        while len(vals) > 1:
            half = seg // 2
            nxt = []
            pick = [ir.Constant(ir.VectorType(I32, w), idx(half, h, 0) + idx(half, h, w)) for h in (0, 1)]
            for x, y in zip(vals[::2], vals[1::2]):
                nxt.append(b.fadd(b.shuffle_vector(x, y, pick[0]), b.shuffle_vector(x, y, pick[1])))
            vals, seg = nxt, half
        (v,) = vals
        width = w
        while seg > 1:
            half = seg // 2
            width //= 2
            lo = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, width), idx(half, 0, 0)))
            hi = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, width), idx(half, 1, 0)))
            v, seg = b.fadd(lo, hi), half
        return v

    def at(self, p: ir.Value, off: ir.Value) -> ir.Value:
        return self.b.gep(p, [off], source_etype=self.t)


def _pack(b: ir.IRBuilder, v: _Vec, dst: ir.Value, dst_rs: ir.Value, src: ir.Value, rows: ir.Value,
          cols: ir.Value, s_row: ir.Value, s_col: ir.Value) -> None:
    """``dst[r*dst_rs + c] = src[r*s_row + c*s_col]`` for ``r < rows, c < cols``."""
    def row(r: ir.Value) -> None:
        d, s = v.at(dst, b.mul(r, dst_rs)), v.at(src, b.mul(r, s_row))
        _loop(b, cols, lambda c: b.store(b.load(v.at(s, b.mul(c, s_col)), typ=v.t), v.at(d, c)))

    _loop(b, rows, row)


def _write(b: ir.IRBuilder, v: _Vec, res: ir.Value, tmp: ir.Value, o: ir.Value, so1: ir.Value,
           first: ir.Value, count: ir.Value, add: ir.Value) -> None:
    """``o[c*so1] = res[c] (+ o[c*so1] when add)`` for ``first <= c < count`` (``res`` also
    in ``tmp``)."""
    with b.if_else(b.icmp_signed("==", so1, _c(1))) as (unit, strided):
        with unit:
            whole = b.and_(b.icmp_signed(">=", count, _c(v.lanes)), b.icmp_signed("<=", first, _c(0)))
            with b.if_else(whole) as (all_lanes, part):
                for case, tail in ((all_lanes, False), (part, True)):
                    with case:
                        mask = v.mask(count, first) if tail else None
                        # Without ``add`` C is not read at all (a new output: no cache misses to fetch it).
                        with b.if_else(add) as (plus, only):
                            with plus:
                                v.store(b.fadd(res, v.load(o, mask)), o, mask)
                            with only:
                                v.store(res, o, mask)
        with strided:
            def one(c: ir.Value) -> None:
                x = b.load(v.at(tmp, c), typ=v.t)
                p = v.at(o, b.mul(c, so1))
                b.store(b.select(add, b.fadd(x, b.load(p, typ=v.t)), x), p)

            lo = b.select(b.icmp_signed("<", first, _c(0)), _c(0), first)
            _loop(b, _min(b, count, _c(v.lanes)), one, start=lo)


def _build_rows(module: ir.Module, dtype: str) -> ir.Function:
    """``C += / = alpha * A @ B`` vectorized along C's columns (see the module docstring)."""
    t = reg_type(dtype)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, I64, I64, t, PTR, I64, I64, PTR, I64, I64,
                                                             PTR, I64, I64, I1, PTR]),
                     name=f"gc_small_rows.{_P[dtype]}")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, O, so0, so1, acc, buf = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    v = _Vec(b, dtype)
    L, NR = v.lanes, CB * v.lanes
    kc_max = BUF_BYTES // (NR * v.size)
    accbuf = b.alloca(ir.ArrayType(v.vt, RB * CB), name="accs")
    accbuf.align = 64
    accbuf.type = PTR  # opaque: llvmlite checks stores against a typed pointer's pointee
    direct = b.icmp_signed("==", sb1, _c(1))
    kstep = b.select(direct, k, _c(kc_max))
    prs = b.select(direct, sb0, _c(NR))
    valpha = v.splat(alpha)

    def chunk(kc: ir.Value) -> None:
        kl = _min(b, kstep, b.sub(k, kc))
        add = b.or_(acc, b.icmp_signed("!=", kc, _c(0)))

        # B read in place: panels start at the 64-byte boundary before column 0 (split loads
        # cost ~1.5x; lanes before column 0 are masked), when every row is aligned alike.
        row0 = v.at(B, b.mul(kc, sb0))
        same = b.icmp_signed("==", b.urem(b.mul(sb0, _c(v.size)), _c(64)), _c(0))
        # Packed B: align C's rows instead (a product with a small k is mostly its writes).
        o_same = b.and_(b.icmp_signed("==", so1, _c(1)),
                        b.icmp_signed("==", b.urem(b.mul(so0, _c(v.size)), _c(64)), _c(0)))
        shift = b.select(direct, b.select(same, v.misalignment(row0), _c(0)),
                         b.select(o_same, v.misalignment(O), _c(0)))

        def panel(j: ir.Value) -> None:
            nl = _min(b, _c(NR), b.sub(n, j))
            lo = b.select(b.icmp_signed("<", j, _c(0)), b.neg(j), _c(0))
            masks = [v.mask(b.sub(nl, _c(c * L)), b.sub(lo, _c(c * L))) for c in range(CB)]
            src = v.at(B, b.add(b.mul(kc, sb0), b.mul(j, sb1)))
            with b.if_then(b.not_(direct)):
                _pack(b, v, v.at(buf, lo), _c(NR), v.at(src, b.mul(lo, sb1)), kl, b.sub(nl, lo), sb0, sb1)
            pan = b.select(direct, src, buf)

            def block(i: ir.Value) -> None:
                rl = _min(b, _c(RB), b.sub(m, i))
                last = b.sub(rl, _c(1))
                arows = [v.at(A, b.add(b.mul(b.add(i, _min(b, _c(r), last)), sa0), b.mul(kc, sa1)))
                         for r in range(RB)]

                def products(masked: bool) -> None:
                    def step(p: ir.Value, *accs: ir.Value) -> list[ir.Value]:
                        prow = v.at(pan, b.mul(p, prs))
                        bv = [v.load(v.at(prow, _c(c * L)), masks[c] if masked else None) for c in range(CB)]
                        out = []
                        for r in range(RB):
                            a = v.splat(b.load(v.at(arows[r], b.mul(p, sa1)), typ=t))
                            out += [v.fma(a, bv[c], accs[r * CB + c]) for c in range(CB)]
                        return out

                    accs = _loop(b, kl, step, [v.zero] * (RB * CB))
                    for q, x in enumerate(accs):
                        b.store(b.fmul(valpha, x), b.gep(accbuf, [_c(q)], source_etype=v.vt))

                whole_panel = b.and_(b.icmp_signed("==", nl, _c(NR)), b.icmp_signed("==", lo, _c(0)))
                with b.if_else(whole_panel) as (whole, part):
                    with whole:
                        products(False)
                    with part:
                        products(True)

                def quick() -> None:  # a whole block into rows of unit stride: straight stores
                    slots = [b.load(b.gep(accbuf, [_c(q)], source_etype=v.vt), typ=v.vt)
                             for q in range(RB * CB)]
                    dsts = [v.at(O, b.add(b.mul(b.add(i, _c(r)), so0), b.add(j, _c(c * L))))
                            for r in range(RB) for c in range(CB)]
                    with b.if_else(add) as (plus, only):
                        with plus:
                            for x, d in zip(slots, dsts):
                                v.store(b.fadd(x, v.load(d, None)), d, None)
                        with only:
                            for x, d in zip(slots, dsts):
                                v.store(x, d, None)

                def row(r: ir.Value) -> None:
                    orow = v.at(O, b.mul(b.add(i, r), so0))
                    for c in range(CB):
                        slot = b.gep(accbuf, [b.add(b.mul(r, _c(CB)), _c(c))], source_etype=v.vt)
                        dst = v.at(orow, b.mul(b.add(j, _c(c * L)), so1))
                        _write(b, v, b.load(slot, typ=v.vt), slot, dst, so1, b.sub(lo, _c(c * L)),
                               b.sub(nl, _c(c * L)), add)

                fast = b.and_(b.and_(whole_panel, b.icmp_signed("==", rl, _c(RB))),
                              b.icmp_signed("==", so1, _c(1)))
                with b.if_else(fast) as (at_once, by_rows):
                    with at_once:
                        quick()
                    with by_rows:
                        _loop(b, rl, row)

            _loop(b, m, block, step=RB)

        _loop(b, n, panel, step=NR, start=b.neg(shift))

    _loop_var(b, k, kstep, chunk)
    b.ret_void()
    return fn


def _loop_var(b: ir.IRBuilder, n: ir.Value, step: ir.Value, body: Callable[[ir.Value], None]) -> None:
    """``for i in range(0, n, step)`` with a run-time step (> 0)."""
    fn = b.function
    pre = b.block
    head, loop, after = (fn.append_basic_block(s) for s in ("vhead", "vbody", "vafter"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64)
    i.add_incoming(_c(0), pre)
    b.cbranch(b.icmp_signed("<", i, n), loop, after)
    b.position_at_end(loop)
    body(i)
    i.add_incoming(b.add(i, step), b.block)
    b.branch(head)
    b.position_at_end(after)


def _build_dots(module: ir.Module, dtype: str) -> ir.Function:
    """``C += / = alpha * A @ B`` for ``n <= SMALL`` and A unit-stride along k: dot
    products vectorized along k (see the module docstring)."""
    t = reg_type(dtype)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, I64, I64, t, PTR, I64, I64, PTR, I64, I64,
                                                             PTR, I64, I64, I1, PTR]),
                     name=f"gc_small_dots.{_P[dtype]}")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    m, n, k, alpha, A, sa0, _sa1, B, sb0, sb1, O, so0, so1, acc, buf = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    v = _Vec(b, dtype)
    L = v.lanes
    kc_max = (BUF_BYTES // v.size - L) // SMALL // L * L  # room to shift the packed rows
    nacc = DB_ROWS * DB_COLS
    sums = b.alloca(ir.ArrayType(v.t, nacc), name="sums")
    sums.type = PTR
    direct = b.icmp_signed("==", sb0, _c(1))  # B^T's rows are contiguous: read in place
    kstep = b.select(direct, k, _c(kc_max))
    brs = b.select(direct, sb1, _c(kc_max))

    def chunk(kc: ir.Value) -> None:
        kl = _min(b, kstep, b.sub(k, kc))
        add = b.or_(acc, b.icmp_signed("!=", kc, _c(0)))
        # Vectors along k start at the 64-byte boundary before A's row start (when all rows
        # are aligned alike; split loads cost ~1.5x), lanes before it masked; packed B^T rows
        # are placed to match.
        same = b.icmp_signed("==", b.urem(b.mul(sa0, _c(v.size)), _c(64)), _c(0))
        shift = b.select(same, v.misalignment(v.at(A, kc)), _c(0))
        src = v.at(B, b.mul(kc, sb0))
        with b.if_then(b.not_(direct)):
            _pack(b, v, v.at(buf, shift), _c(kc_max), src, n, kl, sb1, sb0)
        bt = b.select(direct, src, v.at(buf, shift))
        span = b.add(kl, shift)
        nv = b.udiv(b.add(span, _c(L - 1)), _c(L))
        c_lo = b.zext(b.icmp_signed(">", shift, _c(0)), I64)
        c_hi = b.udiv(span, _c(L))
        c_hi = b.select(b.icmp_signed("<", c_hi, c_lo), c_lo, c_hi)

        def block(i: ir.Value) -> None:
            rl = _min(b, _c(DB_ROWS), b.sub(m, i))
            arows = [v.at(A, b.add(b.mul(b.add(i, _min(b, _c(r), b.sub(rl, _c(1)))), sa0), kc))
                     for r in range(DB_ROWS)]

            def cols(j: ir.Value) -> None:
                ql = _min(b, _c(DB_COLS), b.sub(n, j))
                last = b.sub(ql, _c(1))
                bcols = [v.at(bt, b.mul(b.add(j, _min(b, _c(q), last)), brs)) for q in range(DB_COLS)]

                def step(c: ir.Value, *accs: ir.Value, masked: bool = False) -> list[ir.Value]:
                    off = b.sub(b.mul(c, _c(L)), shift)
                    mask = v.mask(b.sub(kl, off), b.neg(off)) if masked else None
                    av = [v.load(v.at(p, off), mask) for p in arows]
                    bv = [v.load(v.at(p, off), mask) for p in bcols]
                    return [v.fma(av[r], bv[q], accs[r * DB_COLS + q])
                            for r in range(DB_ROWS) for q in range(DB_COLS)]

                def tail(c: ir.Value, *a: ir.Value) -> list[ir.Value]:
                    return step(c, *a, masked=True)

                accs = _loop(b, c_lo, tail, [v.zero] * nacc)
                accs = _loop(b, c_hi, step, accs, start=c_lo)
                accs = _loop(b, nv, tail, accs, start=c_hi)
                total = v.hsums(accs)
                scale = b.insert_element(ir.Constant(total.type, ir.Undefined), alpha, ir.Constant(I32, 0))
                scale = b.shuffle_vector(scale, ir.Constant(total.type, ir.Undefined),
                                         ir.Constant(ir.VectorType(I32, nacc), [0] * nacc))
                b.store(b.fmul(scale, total), sums, align=v.size)

                def row(r: ir.Value) -> None:
                    def col(q: ir.Value) -> None:
                        x = b.load(b.gep(sums, [b.add(b.mul(r, _c(DB_COLS)), q)], source_etype=t), typ=t)
                        p = v.at(O, b.add(b.mul(b.add(i, r), so0), b.mul(b.add(j, q), so1)))
                        old = b.load(p, typ=t)
                        b.store(b.select(add, b.fadd(x, old), x), p)

                    _loop(b, ql, col)

                _loop(b, rl, row)

            _loop(b, n, cols, step=DB_COLS)

        _loop(b, m, block, step=DB_ROWS)

    _loop_var(b, k, kstep, chunk)
    b.ret_void()
    return fn


def _cost(b: ir.IRBuilder, lanes: int, m: ir.Value, n: ir.Value, k: ir.Value, sb1: ir.Value,
          so1: ir.Value) -> ir.Value:
    """Estimated work of the rows form in this orientation (doubles: no overflow)."""
    f = ir.DoubleType()

    def fl(x: ir.Value) -> ir.Value:
        return b.sitofp(x, f)

    def up(x: ir.Value, q: int) -> ir.Value:
        return fl(b.mul(b.udiv(b.add(x, _c(q - 1)), _c(q)), _c(q)))

    fmas = b.fdiv(b.fmul(b.fmul(up(m, RB), up(n, CB * lanes)), fl(k)), ir.Constant(f, lanes))
    mn = b.fmul(fl(m), fl(n))
    writes = b.select(b.icmp_signed("==", so1, _c(1)), b.fdiv(mn, ir.Constant(f, lanes)), mn)
    packs = b.select(b.icmp_signed("==", sb1, _c(1)), ir.Constant(f, 0.0), b.fmul(fl(k), fl(n)))
    return b.fadd(fmas, b.fadd(writes, packs))


def build(module: ir.Module, dtype: str) -> None:
    """Add ``dtype``'s entry point (see ``signature``) and its two loop forms to ``module``."""
    rows, dots = _build_rows(module, dtype), _build_dots(module, dtype)
    fn = ir.Function(module, signature(dtype), name=_impl_name(dtype))
    fn.attributes.add("nounwind")
    m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, O, so0, so1, accumulate = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    one = _c(1)

    def norm(d: ir.Value, s: ir.Value) -> ir.Value:  # a stride along a length-1 axis is never used
        return b.select(b.icmp_signed("==", d, one), one, s)

    sa0, sa1, sb0, sb1 = norm(m, sa0), norm(k, sa1), norm(k, sb0), norm(n, sb1)
    so0, so1 = norm(m, so0), norm(n, so1)
    small = _c(SMALL)
    le = b.icmp_signed
    lo = _min(b, _min(b, m, n), k)
    f64 = ir.DoubleType()
    work = b.fmul(b.fmul(b.sitofp(m, f64), b.sitofp(n, f64)), b.sitofp(k, f64))
    limits = ir.GlobalVariable(module, ir.ArrayType(f64, 2), LIMITS)
    limits.linkage = "external"
    least, most = (b.load(b.gep(limits, [_c(0), _c(q)], source_etype=limits.value_type), typ=f64)
                   for q in (0, 1))
    sized = b.and_(b.fcmp_ordered(">=", work, least), b.fcmp_ordered("<", work, most))
    ok = b.and_(b.and_(le("<=", lo, small), sized), le(">", lo, _c(0)))
    go = fn.append_basic_block("go")
    decline = fn.append_basic_block("decline")
    b.cbranch(ok, go, decline)
    b.position_at_end(decline)
    b.ret(ir.Constant(I32, 1))
    b.position_at_end(go)
    buf = b.alloca(ir.ArrayType(ir.IntType(8), BUF_BYTES), name="buf")
    buf.align = 64
    buf.type = PTR
    acc = b.icmp_signed("!=", accumulate, ir.Constant(I32, 0))
    deep = le(">", k, small)
    plain = [m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, O, so0, so1, acc, buf]
    swapped = [n, m, k, alpha, B, sb1, sb0, A, sa1, sa0, O, so1, so0, acc, buf]
    dots_plain = b.and_(b.and_(deep, le("<=", n, small)), le("==", sa1, one))
    dots_swapped = b.and_(b.and_(deep, le("<=", m, small)), le("==", sb0, one))
    lanes = 64 // np.dtype(dtype).itemsize
    with b.if_else(b.or_(dots_plain, dots_swapped)) as (as_dots, as_rows):
        with as_dots:
            b.call(dots, [b.select(dots_plain, x, y) for x, y in zip(plain, swapped)])
        with as_rows:
            flip = b.fcmp_ordered("<", _cost(b, lanes, n, m, k, sa0, so0), _cost(b, lanes, m, n, k, sb1, so1))
            b.call(rows, [b.select(flip, y, x) for x, y in zip(plain, swapped)])
    b.ret(ir.Constant(I32, 0))


# -- compiling and binding ------------------------------------------------------------------------
def _text(dtype: str) -> str:
    from graphc.backend.llvm import jit

    module = ir.Module(name=f"graphc_small_{_P[dtype]}gemm")
    build(module, dtype)
    return jit.module_text(module)


def cell_address(dtype: str) -> int:
    return ctypes.addressof(_CELLS[dtype])


def ready(dtype: str, wait: bool = False) -> bool:
    """Whether ``dtype``'s cell holds the function. The first call starts compiling it (or
    loading it from the compile cache) in a thread, once per process: ~80-150 ms of LLVM
    cold, which the first products do not wait for (they call BLAS until the cell is
    filled); ``wait`` waits. False when disabled (GRAPHC_SMALL_GEMM=0, ``switch``) or the
    build failed (BLAS does everything)."""
    if _CELLS[dtype].value:
        return True
    if not enabled() or dtype not in _P or dtype in _state.get("off", ()):
        return False
    with _lock:
        if _CELLS[dtype].value or _state.get(f"failed-{dtype}"):
            return bool(_CELLS[dtype].value)
        addr = _state.get(f"addr-{dtype}")
        if addr:
            _CELLS[dtype].value = addr
            return True
        thread = _state.get(f"thread-{dtype}")
        if thread is None or not thread.is_alive():  # none yet, or a forked child's copy of one
            thread = threading.Thread(target=_build_in_thread, args=(dtype,), daemon=True,
                                      name=f"graphc-small-{_P[dtype]}gemm")
            _state[f"thread-{dtype}"] = thread
            thread.start()
    if wait:
        thread.join()  # type: ignore[union-attr]
    return bool(_CELLS[dtype].value)


def _build_in_thread(dtype: str) -> None:
    try:
        addr = _compile(dtype)
    except Exception:  # noqa: BLE001 - BLAS computes the products instead
        _state[f"failed-{dtype}"] = True
        return
    with _lock:
        _state[f"addr-{dtype}"] = addr
        if dtype not in _state.get("off", ()):
            _CELLS[dtype].value = addr


def _compile(dtype: str) -> int:
    import llvmlite.binding as llvm

    from graphc.backend.llvm import cache, jit

    llvm.add_symbol(LIMITS, ctypes.addressof(_LIMITS))

    name = _impl_name(dtype)
    key = cache.module_key([name], OPT)
    entry = cache.load(key)
    if entry is not None and entry.names == [name]:
        engine, addresses = jit.load_object(entry.obj, [name])
    else:
        text = _text(dtype)
        obj, opt_text = jit.build_object(text, OPT, unlocked=True)
        engine, addresses = jit.load_object(obj, [name])
        cache.store(cache.Entry(key, [name], {}, obj, cache.pack_ir(text, opt_text), []))
    _state[f"engine-{dtype}"] = engine  # keeps the code alive (for the whole process)
    return addresses[name]


def set_limits(least: float = MIN_WORK, most: float = MAX_WORK) -> tuple[float, float]:
    """Products with ``least <= m*n*k < most`` (and a small dimension) run natively from now
    on; returns the previous limits (for tests and measurements)."""
    old = (_LIMITS[0], _LIMITS[1])
    _LIMITS[0], _LIMITS[1] = least, most
    return old


def switch(dtype: str, on: bool) -> None:
    """Use (``on``) or not the native small products of ``dtype`` in kernels from now on
    (for tests and measurements; the code stays loaded)."""
    off = _state.setdefault("off", set())
    if on:
        off.discard(dtype)  # type: ignore[union-attr]
        ready(dtype, wait=True)
    else:
        off.add(dtype)  # type: ignore[union-attr]
        _CELLS[dtype].value = 0
