"""The two loop forms of graphc.backend.llvm.small_gemm (see its docstring): *rows*
(vectorized along the output's columns, A's elements broadcast) and *dots* (vectorized
along k), with the vector helpers they share and the cost estimate that picks the
orientation of the rows form."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I1, I32, I64, PTR, intrinsic, reg_type

SMALL = 16  # a dimension up to this is small
BUF_BYTES = 33 * 1024  # packing buffer (stack): 512 floats of k for 16 columns, and room to shift
RB, CB = 4, 2  # rows form: 4 rows x 2 vectors of accumulators
DB_ROWS, DB_COLS = 4, 2  # dots form: 4 rows x 2 columns
LETTER = {"float32": "s", "float64": "d"}


# -- IR helpers ------------------------------------------------------------------------------
def i64c(v: int) -> ir.Constant:
    return ir.Constant(I64, v)


def imin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
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
    i.add_incoming(i64c(0) if start is None else start, pre)
    phis = []
    for v in init:
        p = b.phi(v.type)
        p.add_incoming(v, pre)
        phis.append(p)
    b.cbranch(b.icmp_signed("<", i, n), loop, after)
    b.position_at_end(loop)
    out = body(i, *phis) if init else (body(i), ())[1]
    i.add_incoming(b.add(i, i64c(step)), b.block)
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
        c = b.select(b.icmp_signed("<", x, i64c(0)), i64c(0), imin(b, x, i64c(self.lanes)))
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
        off = b.and_(b.ptrtoint(p, I64), i64c(63))
        whole = b.icmp_signed("==", b.urem(off, i64c(self.size)), i64c(0))
        return b.select(whole, b.udiv(off, i64c(self.size)), i64c(0))

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
    with b.if_else(b.icmp_signed("==", so1, i64c(1))) as (unit, strided):
        with unit:
            whole = b.and_(b.icmp_signed(">=", count, i64c(v.lanes)), b.icmp_signed("<=", first, i64c(0)))
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

            lo = b.select(b.icmp_signed("<", first, i64c(0)), i64c(0), first)
            _loop(b, imin(b, count, i64c(v.lanes)), one, start=lo)


def _loop_form(module: ir.Module, dtype: str, kind: str) -> tuple[ir.Function, ir.IRBuilder, _Vec]:
    """An internal ``void gc_small_<kind>.<s|d>(m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, C,
    sc0, sc1, i1 accumulate, ptr buf)``, its entry builder and vector helpers."""
    t = reg_type(dtype)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, I64, I64, t, PTR, I64, I64, PTR, I64, I64,
                                                             PTR, I64, I64, I1, PTR]),
                     name=f"gc_small_{kind}.{LETTER[dtype]}")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    return fn, b, _Vec(b, dtype)


def build_rows(module: ir.Module, dtype: str) -> ir.Function:
    """``C += / = alpha * A @ B`` vectorized along C's columns (see the module docstring)."""
    fn, b, v = _loop_form(module, dtype, "rows")
    t = reg_type(dtype)
    m, n, k, alpha, A, sa0, sa1, B, sb0, sb1, O, so0, so1, acc, buf = fn.args
    L, NR = v.lanes, CB * v.lanes
    kc_max = BUF_BYTES // (NR * v.size)
    accbuf = b.alloca(ir.ArrayType(v.vt, RB * CB), name="accs")
    accbuf.align = 64
    accbuf.type = PTR  # opaque: llvmlite checks stores against a typed pointer's pointee
    direct = b.icmp_signed("==", sb1, i64c(1))
    kstep = b.select(direct, k, i64c(kc_max))
    prs = b.select(direct, sb0, i64c(NR))
    valpha = v.splat(alpha)

    def chunk(kc: ir.Value) -> None:
        kl = imin(b, kstep, b.sub(k, kc))
        add = b.or_(acc, b.icmp_signed("!=", kc, i64c(0)))

        # B read in place: panels start at the 64-byte boundary before column 0 (split loads
        # cost ~1.5x; lanes before column 0 are masked), when every row is aligned alike.
        row0 = v.at(B, b.mul(kc, sb0))
        same = b.icmp_signed("==", b.urem(b.mul(sb0, i64c(v.size)), i64c(64)), i64c(0))
        # Packed B: align C's rows instead (a product with a small k is mostly its writes).
        o_same = b.and_(b.icmp_signed("==", so1, i64c(1)),
                        b.icmp_signed("==", b.urem(b.mul(so0, i64c(v.size)), i64c(64)), i64c(0)))
        shift = b.select(direct, b.select(same, v.misalignment(row0), i64c(0)),
                         b.select(o_same, v.misalignment(O), i64c(0)))

        def panel(j: ir.Value) -> None:
            nl = imin(b, i64c(NR), b.sub(n, j))
            lo = b.select(b.icmp_signed("<", j, i64c(0)), b.neg(j), i64c(0))
            masks = [v.mask(b.sub(nl, i64c(c * L)), b.sub(lo, i64c(c * L))) for c in range(CB)]
            src = v.at(B, b.add(b.mul(kc, sb0), b.mul(j, sb1)))
            with b.if_then(b.not_(direct)):
                _pack(b, v, v.at(buf, lo), i64c(NR), v.at(src, b.mul(lo, sb1)), kl, b.sub(nl, lo), sb0, sb1)
            pan = b.select(direct, src, buf)

            def block(i: ir.Value) -> None:
                rl = imin(b, i64c(RB), b.sub(m, i))
                last = b.sub(rl, i64c(1))
                arows = [v.at(A, b.add(b.mul(b.add(i, imin(b, i64c(r), last)), sa0), b.mul(kc, sa1)))
                         for r in range(RB)]

                def products(masked: bool) -> None:
                    def step(p: ir.Value, *accs: ir.Value) -> list[ir.Value]:
                        prow = v.at(pan, b.mul(p, prs))
                        bv = [v.load(v.at(prow, i64c(c * L)), masks[c] if masked else None)
                              for c in range(CB)]
                        out = []
                        for r in range(RB):
                            a = v.splat(b.load(v.at(arows[r], b.mul(p, sa1)), typ=t))
                            out += [v.fma(a, bv[c], accs[r * CB + c]) for c in range(CB)]
                        return out

                    accs = _loop(b, kl, step, [v.zero] * (RB * CB))
                    for q, x in enumerate(accs):
                        b.store(b.fmul(valpha, x), b.gep(accbuf, [i64c(q)], source_etype=v.vt))

                whole_panel = b.and_(b.icmp_signed("==", nl, i64c(NR)), b.icmp_signed("==", lo, i64c(0)))
                with b.if_else(whole_panel) as (whole, part):
                    with whole:
                        products(False)
                    with part:
                        products(True)

                def quick() -> None:  # a whole block into rows of unit stride: straight stores
                    slots = [b.load(b.gep(accbuf, [i64c(q)], source_etype=v.vt), typ=v.vt)
                             for q in range(RB * CB)]
                    dsts = [v.at(O, b.add(b.mul(b.add(i, i64c(r)), so0), b.add(j, i64c(c * L))))
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
                        slot = b.gep(accbuf, [b.add(b.mul(r, i64c(CB)), i64c(c))], source_etype=v.vt)
                        dst = v.at(orow, b.mul(b.add(j, i64c(c * L)), so1))
                        _write(b, v, b.load(slot, typ=v.vt), slot, dst, so1, b.sub(lo, i64c(c * L)),
                               b.sub(nl, i64c(c * L)), add)

                fast = b.and_(b.and_(whole_panel, b.icmp_signed("==", rl, i64c(RB))),
                              b.icmp_signed("==", so1, i64c(1)))
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
    i.add_incoming(i64c(0), pre)
    b.cbranch(b.icmp_signed("<", i, n), loop, after)
    b.position_at_end(loop)
    body(i)
    i.add_incoming(b.add(i, step), b.block)
    b.branch(head)
    b.position_at_end(after)


def build_dots(module: ir.Module, dtype: str) -> ir.Function:
    """``C += / = alpha * A @ B`` for ``n <= SMALL`` and A unit-stride along k: dot
    products vectorized along k (see the module docstring)."""
    fn, b, v = _loop_form(module, dtype, "dots")
    t = reg_type(dtype)
    m, n, k, alpha, A, sa0, _sa1, B, sb0, sb1, O, so0, so1, acc, buf = fn.args
    L = v.lanes
    kc_max = (BUF_BYTES // v.size - L) // SMALL // L * L  # room to shift the packed rows
    nacc = DB_ROWS * DB_COLS
    sums = b.alloca(ir.ArrayType(v.t, nacc), name="sums")
    sums.type = PTR
    direct = b.icmp_signed("==", sb0, i64c(1))  # B^T's rows are contiguous: read in place
    kstep = b.select(direct, k, i64c(kc_max))
    brs = b.select(direct, sb1, i64c(kc_max))

    def chunk(kc: ir.Value) -> None:
        kl = imin(b, kstep, b.sub(k, kc))
        add = b.or_(acc, b.icmp_signed("!=", kc, i64c(0)))
        # Vectors along k start at the 64-byte boundary before A's row start (when all rows
        # are aligned alike; split loads cost ~1.5x), lanes before it masked; packed B^T rows
        # are placed to match.
        same = b.icmp_signed("==", b.urem(b.mul(sa0, i64c(v.size)), i64c(64)), i64c(0))
        shift = b.select(same, v.misalignment(v.at(A, kc)), i64c(0))
        src = v.at(B, b.mul(kc, sb0))
        with b.if_then(b.not_(direct)):
            _pack(b, v, v.at(buf, shift), i64c(kc_max), src, n, kl, sb1, sb0)
        bt = b.select(direct, src, v.at(buf, shift))
        span = b.add(kl, shift)
        nv = b.udiv(b.add(span, i64c(L - 1)), i64c(L))
        c_lo = b.zext(b.icmp_signed(">", shift, i64c(0)), I64)
        c_hi = b.udiv(span, i64c(L))
        c_hi = b.select(b.icmp_signed("<", c_hi, c_lo), c_lo, c_hi)

        def block(i: ir.Value) -> None:
            rl = imin(b, i64c(DB_ROWS), b.sub(m, i))
            arows = [v.at(A, b.add(b.mul(b.add(i, imin(b, i64c(r), b.sub(rl, i64c(1)))), sa0), kc))
                     for r in range(DB_ROWS)]

            def cols(j: ir.Value) -> None:
                ql = imin(b, i64c(DB_COLS), b.sub(n, j))
                last = b.sub(ql, i64c(1))
                bcols = [v.at(bt, b.mul(b.add(j, imin(b, i64c(q), last)), brs)) for q in range(DB_COLS)]

                def step(c: ir.Value, *accs: ir.Value, masked: bool = False) -> list[ir.Value]:
                    off = b.sub(b.mul(c, i64c(L)), shift)
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
                        x = b.load(b.gep(sums, [b.add(b.mul(r, i64c(DB_COLS)), q)], source_etype=t), typ=t)
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


def cost(b: ir.IRBuilder, lanes: int, m: ir.Value, n: ir.Value, k: ir.Value, sb1: ir.Value,
          so1: ir.Value) -> ir.Value:
    """Estimated work of the rows form in this orientation (doubles: no overflow)."""
    f = ir.DoubleType()

    def fl(x: ir.Value) -> ir.Value:
        return b.sitofp(x, f)

    def up(x: ir.Value, q: int) -> ir.Value:
        return fl(b.mul(b.udiv(b.add(x, i64c(q - 1)), i64c(q)), i64c(q)))

    fmas = b.fdiv(b.fmul(b.fmul(up(m, RB), up(n, CB * lanes)), fl(k)), ir.Constant(f, lanes))
    mn = b.fmul(fl(m), fl(n))
    writes = b.select(b.icmp_signed("==", so1, i64c(1)), b.fdiv(mn, ir.Constant(f, lanes)), mn)
    packs = b.select(b.icmp_signed("==", sb1, i64c(1)), ir.Constant(f, 0.0), b.fmul(fl(k), fl(n)))
    return b.fadd(fmas, b.fadd(writes, packs))
