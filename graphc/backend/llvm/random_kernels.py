"""Native kernels of the random ops (graphc.ops.random): uniform, normal and binomial.

The reference defines every sample element as a function of its flat index and the
stream state (Philox4x64-10 words, see graphc.ops.random), so a kernel can compute
any range ``[start, stop)`` of elements on its own: the executor's threads split big
samples. The output is walked in chunks of at most CHUNK elements inside one row of
the last axis (or of the whole flat sample when the parameters are scalars): a chunk's
Philox blocks go to a stack buffer (64x64->128-bit products as i128 multiplies, i.e.
scalar ``mulx``: vector code from 32-bit halves measured 10-40% slower, even with
AVX-512), then a unit-stride loop turns words into samples, which LLVM vectorizes.
Parameters (low/high, avg/std, n/p) are registers when their static shape is all ones,
else read with broadcast strides (rank aligned to the right).

Arithmetic follows the reference operation by operation in float64 (no fused
multiply-add, no reassociation), so uniform samples and binomial counts are
bit-identical; normal samples use graphc's vectorizable log and the fdlibm/musl sin
and cos kernels on ``|theta| <= pi/4`` (within 1 ulp of libm there), a few float64
ulp from the reference. Binomial parameters out of range (p outside [0, 1] or NaN,
n < 0) make the kernel refuse, and the reference raises its error.

Kernel arguments: the node's inputs and outputs, ``(state, size..., a, b, new_state,
out)``; ``new_state`` is written by the call whose range starts at 0; size inputs are
checked against the output's dims.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm import vmath
from graphc.backend.llvm.irutil import (
    F32,
    F64,
    I32,
    I64,
    NATIVE_DTYPES,
    call_intr,
    cast,
    is_float,
)
from graphc.backend.llvm.lowering import (
    Arr,
    Gate,
    NativeNode,
    c64,
    entry_alloca,
    for_range,
    kernel_id,
    new_kernel,
    register_lowering,
)
from graphc.backend.llvm.random_bits import cos_kernel, f64c, philox_fill, sin_kernel, u53
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.random import TWO_PI, RandomVariable

Runner = Callable[[list[Any]], list[Any]]
CHUNK = 256
VERSION = 3  # bump when the generated code changes meaning
# Samples from this many elements are split over the executor's threads (a round trip
# costs ~50-80 us; a uniform element ~1-2 ns, a normal one ~3-5 ns).
SPLIT_MIN = {"uniform": 1 << 18, "binomial": 1 << 18, "normal": 1 << 17}


# -- kernels -----------------------------------------------------------------------------
class _Param:
    """One distribution parameter: a register (rank 0 in the kernel) or strided loads."""

    def __init__(self, b: ir.IRBuilder, arr: Arr, out_ndim: int) -> None:
        self.b, self.arr = b, arr
        self.fixed = arr.load(c64(0)) if arr.ndim == 0 else None
        lead = out_ndim - arr.ndim
        # stride of output axis d (0 where the parameter is broadcast along it)
        self.stride = [arr.bstride(d - lead) if d >= lead else c64(0) for d in range(out_ndim)]

    def at(self, off: ir.Value, k: ir.Value) -> ir.Value:
        if self.fixed is not None:
            return self.fixed
        return self.arr.load(self.b.add(off, self.b.mul(k, self.stride[-1])))


def _to_f64(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    return b.fpext(v, F64) if v.type == F32 else v


def _to_i64(b: ir.IRBuilder, v: ir.Value, dtype: str) -> ir.Value:
    if v.type.width == 64:
        return v
    return b.sext(v, I64) if dtype.startswith("int") else b.zext(v, I64)


def build_random(module: ir.Module, name: str, dist: str, out_dt: str, a_dt: str, b_dt: str,
                 a_nd: int, b_nd: int, ndim: int, size_kind: str, size_dts: tuple[str, ...]) -> None:
    fn, b, (ps, *psizes, pa, pb, pns, po) = new_kernel(module, name, 5 + len(size_dts))
    start, stop = fn.args[0], fn.args[1]
    st, ns = Arr(b, ps, "uint64", 1), Arr(b, pns, "uint64", 1)
    out = Arr(b, po, out_dt, ndim)
    _check_size(b, out, size_kind, psizes, size_dts)
    pa_, pb_ = _Param(b, Arr(b, pa, a_dt, a_nd), ndim), _Param(b, Arr(b, pb, b_dt, b_nd), ndim)
    k0, k1 = st.load(c64(0)), st.load(st.strides[0])
    with b.if_then(b.icmp_signed("==", start, c64(0))):
        ns.store(k0, c64(0))
        ns.store(b.add(k1, c64(1)), ns.strides[0])
    total = c64(1)
    for d in out.dims:
        total = b.mul(total, d)
    stop = b.select(b.icmp_signed("<", stop, total), stop, total)
    # With both parameters in registers the output is one flat row (a shape like (10**6, 1)
    # must not cost a Philox block per element).
    rows = ndim > 1 and (pa_.fixed is None or pb_.fixed is None)
    row_len = out.dims[-1] if rows else total
    fill = philox_fill(module)
    words = entry_alloca(b, I64, 2 * CHUNK + 16, "words")
    status = entry_alloca(b, I32, name="status")
    b.store(ir.Constant(I32, 0), status)
    chunk = _CHUNKS[dist](_Ctx(b, fill, words, (k0, k1), pa_, pb_, a_dt, out, status))
    pos = entry_alloca(b, I64, name="pos")
    b.store(start, pos)
    head, body, done = (fn.append_basic_block(n) for n in ("chunk", "chunk_body", "done"))
    b.branch(head)
    b.position_at_end(head)
    i = b.load(pos, typ=I64)
    ok = b.icmp_signed("==", b.load(status, typ=I32), ir.Constant(I32, 0))
    go = b.and_(b.icmp_signed("<", i, stop), ok)
    b.cbranch(go, body, done)
    b.position_at_end(body)
    j = b.urem(i, row_len) if rows else i
    row = b.udiv(i, row_len) if rows else c64(0)
    m = b.sub(row_len, j)
    left = b.sub(stop, i)
    m = b.select(b.icmp_signed("<", left, m), left, m)
    m = b.select(b.icmp_signed("<", c64(CHUNK), m), c64(CHUNK), m)
    offs = []
    for p in (pa_, pb_):
        off = c64(0)
        if p.fixed is None and ndim:
            r = row
            for d in reversed(range(ndim - 1)):
                off = b.add(off, b.mul(b.urem(r, out.dims[d]), p.stride[d]))
                r = b.udiv(r, out.dims[d])
            off = b.add(off, b.mul(j, p.stride[-1]))
        offs.append(off)
    chunk(i, m, offs[0], offs[1])
    b.store(b.add(i, m), pos)
    b.branch(head)
    b.position_at_end(done)
    b.ret(b.load(status, typ=I32))


def _check_size(b: ir.IRBuilder, out: Arr, size_kind: str, psizes: list[ir.Value],
                size_dts: tuple[str, ...]) -> None:
    """Refuse (status 1) unless the size inputs' values are the output's dims: the runner
    allocated ``out`` from them, but a caller replaying recorded kernel calls on new
    inputs (graphc.backend.llvm.plan) keys only on shapes, not on values."""
    if size_kind == "none":
        return
    ok = ir.Constant(ir.IntType(1), 1)
    if size_kind == "vector":
        vec = Arr(b, psizes[0], size_dts[0], 1)
        ok = b.icmp_signed("==", vec.dims[0], c64(out.ndim))
        values = [_to_i64(b, vec.load(b.mul(c64(d), vec.strides[0])), size_dts[0]) for d in range(out.ndim)]
    else:
        values = [_to_i64(b, Arr(b, p, dt, 0).load(c64(0)), dt) for p, dt in zip(psizes, size_dts)]
    for v, d in zip(values, out.dims):
        ok = b.and_(ok, b.icmp_signed("==", v, d))
    good = b.append_basic_block("size_ok")
    bad = b.append_basic_block("size_bad")
    b.cbranch(ok, good, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I32, 1))
    b.position_at_end(good)


def _fill(b: ir.IRBuilder, fill: ir.Function, words: ir.Value, key: tuple, first_word: ir.Value,
          nwords: ir.Value, trial: ir.Value) -> ir.Value:
    """Philox words ``first_word .. first_word+nwords-1`` into ``words``; returns the index
    in ``words`` of ``first_word`` (blocks are whole: 4 words each)."""
    blk0 = b.lshr(first_word, c64(2))
    nblk = b.sub(b.lshr(b.add(b.add(first_word, nwords), c64(3)), c64(2)), blk0)
    b.call(fill, [words, blk0, nblk, key[0], key[1], trial])
    return b.and_(first_word, c64(3))


def _word(b: ir.IRBuilder, words: ir.Value, k: ir.Value) -> ir.Value:
    return b.lshr(b.load(b.gep(words, [k], source_etype=I64), typ=I64), c64(11))


@dataclass
class _Ctx:
    """What a distribution's chunk builder needs."""

    b: ir.IRBuilder
    fill: ir.Function
    words: ir.Value
    key: tuple[ir.Value, ir.Value]
    pa: _Param
    pb: _Param
    a_dt: str
    out: Arr
    status: ir.Value


Chunk = Callable[[ir.Value, ir.Value, ir.Value, ir.Value], None]  # (first, count, offset a, offset b)


def _chunk_uniform(cx: _Ctx) -> Chunk:
    b, fill, words, key, pa, pb, out = cx.b, cx.fill, cx.words, cx.key, cx.pa, cx.pb, cx.out
    wide = F64 if F64 in (pa.arr.ty, pb.arr.ty) else F32

    def params(oa: ir.Value, ob: ir.Value, k: ir.Value) -> tuple[ir.Value, ir.Value]:
        lo, hi = pa.at(oa, k), pb.at(ob, k)
        d = b.fsub(_to_f64(b, hi) if wide == F64 else hi, _to_f64(b, lo) if wide == F64 else lo)
        return _to_f64(b, lo), _to_f64(b, d)

    fixed = params(c64(0), c64(0), c64(0)) if pa.fixed is not None and pb.fixed is not None else None

    def chunk(i: ir.Value, m: ir.Value, oa: ir.Value, ob: ir.Value) -> None:
        sh = _fill(b, fill, words, key, i, m, c64(0))

        def one(k: ir.Value) -> None:
            u = b.fmul(u53(b, _word(b, words, b.add(sh, k))), f64c(2.0 ** -53))
            lo, d = fixed or params(oa, ob, k)
            out.store(cast(b, b.fadd(lo, b.fmul(d, u)), "float64", out.dtype), b.add(i, k))

        for_range(b, m, one)

    return chunk


def _chunk_normal(cx: _Ctx) -> Chunk:
    b, fill, words, key, pa, pb, out = cx.b, cx.fill, cx.words, cx.key, cx.pa, cx.pb, cx.out
    zbuf = entry_alloca(b, F64, CHUNK + 4, "z")
    fixed = None
    if pa.fixed is not None and pb.fixed is not None:
        fixed = (_to_f64(b, pa.fixed), _to_f64(b, pb.fixed))

    def pair(sh: ir.Value, q: ir.Value) -> None:
        w = b.add(sh, b.shl(q, c64(1)))
        x1, x2 = _word(b, words, w), _word(b, words, b.add(w, c64(1)))
        u1 = b.fmul(u53(b, b.add(x1, c64(1))), f64c(2.0 ** -53))
        u2 = b.fmul(u53(b, x2), f64c(2.0 ** -53))
        rad = call_intr(b, "sqrt", b.fmul(f64c(-2.0), vmath.call_math(b, "log", u1)))
        quad = call_intr(b, "roundeven", b.fmul(f64c(4.0), u2))
        theta = b.fmul(b.fsub(u2, b.fmul(f64c(0.25), quad)), f64c(TWO_PI))
        s, c = sin_kernel(b, theta), cos_kernel(b, theta)
        ns_, nc = b.fneg(s), b.fneg(c)
        q1, q2, q3 = (b.fcmp_ordered("==", quad, f64c(v)) for v in (1.0, 2.0, 3.0))
        cos_ = b.select(q1, ns_, b.select(q2, nc, b.select(q3, s, c)))
        sin_ = b.select(q1, c, b.select(q2, ns_, b.select(q3, nc, s)))
        zo = b.shl(q, c64(1))
        b.store(b.fmul(rad, cos_), b.gep(zbuf, [zo], source_etype=F64))
        b.store(b.fmul(rad, sin_), b.gep(zbuf, [b.add(zo, c64(1))], source_etype=F64))

    def chunk(i: ir.Value, m: ir.Value, oa: ir.Value, ob: ir.Value) -> None:
        p0 = b.lshr(i, c64(1))
        p1 = b.lshr(b.add(b.add(i, m), c64(1)), c64(1))
        first = b.shl(p0, c64(1))
        sh = _fill(b, fill, words, key, first, b.sub(b.shl(p1, c64(1)), first), c64(0))
        for_range(b, b.sub(p1, p0), lambda q: pair(sh, q))
        zsh = b.and_(i, c64(1))

        def one(k: ir.Value) -> None:
            z = b.load(b.gep(zbuf, [b.add(zsh, k)], source_etype=F64), typ=F64)
            avg, std = fixed or (_to_f64(b, pa.at(oa, k)), _to_f64(b, pb.at(ob, k)))
            out.store(cast(b, b.fadd(avg, b.fmul(std, z)), "float64", out.dtype), b.add(i, k))

        for_range(b, m, one)

    return chunk


def _binomial_param(b: ir.IRBuilder, n: ir.Value, p: ir.Value,
                    n_dt: str) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(n as i64, threshold ceil(p * 2**53) as i64, whether n >= 0 and 0 <= p <= 1):
    ``x * 2**-53 < p`` exactly when the 53-bit integer ``x`` is below the threshold."""
    n = _to_i64(b, n, n_dt)
    p = _to_f64(b, p)
    ok = b.and_(b.and_(b.fcmp_ordered(">=", p, f64c(0.0)), b.fcmp_ordered("<=", p, f64c(1.0))),
                b.icmp_signed(">=", n, c64(0)))
    thr = b.fptosi(call_intr(b, "ceil", b.fmul(b.select(ok, p, f64c(0.0)), f64c(2.0 ** 53))), I64)
    return n, thr, ok


def _chunk_binomial(cx: _Ctx) -> Chunk:
    b, fill, words, key, pa, pb, out = cx.b, cx.fill, cx.words, cx.key, cx.pa, cx.pb, cx.out
    a_dt, status = cx.a_dt, cx.status
    cnt = entry_alloca(b, I64, CHUNK, "counts")
    nbuf = entry_alloca(b, I64, CHUNK, "n")
    tbuf = entry_alloca(b, I64, CHUNK, "thr")
    nmax = entry_alloca(b, I64, name="nmax")
    fixed = None
    if pa.fixed is not None and pb.fixed is not None:
        fixed = _binomial_param(b, pa.fixed, pb.fixed, a_dt)
        good = b.append_basic_block("params_ok")
        bad = b.append_basic_block("params_bad")
        b.cbranch(fixed[2], good, bad)
        b.position_at_end(bad)
        b.ret(ir.Constant(I32, 1))
        b.position_at_end(good)

    def at(buf: ir.Value, k: ir.Value) -> ir.Value:
        return b.gep(buf, [k], source_etype=I64)

    def chunk(i: ir.Value, m: ir.Value, oa: ir.Value, ob: ir.Value) -> None:
        if fixed is None:
            b.store(c64(0), nmax)

            def prep(k: ir.Value) -> None:
                n, thr, ok = _binomial_param(b, pa.at(oa, k), pb.at(ob, k), a_dt)
                with b.if_then(b.not_(ok)):
                    b.store(ir.Constant(I32, 1), status)
                b.store(n, at(nbuf, k))
                b.store(thr, at(tbuf, k))
                cur = b.load(nmax, typ=I64)
                b.store(b.select(b.icmp_signed(">", n, cur), n, cur), nmax)

            for_range(b, m, prep)
            trials = b.select(b.icmp_signed("==", b.load(status, typ=I32), ir.Constant(I32, 0)),
                              b.load(nmax, typ=I64), c64(0))
        else:
            trials = fixed[0]
        for_range(b, m, lambda k: b.store(c64(0), at(cnt, k)))

        def trial(t: ir.Value) -> None:
            sh = _fill(b, fill, words, key, i, m, t)

            def one(k: ir.Value) -> None:
                x = _word(b, words, b.add(sh, k))
                if fixed is None:
                    hit = b.and_(b.icmp_signed("<", x, b.load(at(tbuf, k), typ=I64)),
                                 b.icmp_signed("<", t, b.load(at(nbuf, k), typ=I64)))
                else:
                    hit = b.icmp_signed("<", x, fixed[1])
                p = at(cnt, k)
                b.store(b.add(b.load(p, typ=I64), b.zext(hit, I64)), p)

            for_range(b, m, one)

        for_range(b, trials, trial)
        for_range(b, m, lambda k: out.store(cast(b, b.load(at(cnt, k), typ=I64), "int64", out.dtype),
                                            b.add(i, k)))

    return chunk


_CHUNKS = {"uniform": _chunk_uniform, "normal": _chunk_normal, "binomial": _chunk_binomial}


# -- lowering ----------------------------------------------------------------------------
def _fits(pshape: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Whether a parameter of ``pshape`` broadcasts to exactly ``shape``."""
    if len(pshape) > len(shape):
        return False
    return all(p == 1 or p == s for p, s in zip(reversed(pshape), reversed(shape)))


def _native_params(dist: str, out_dt: str, a_dt: str, b_dt: str) -> bool:
    if dist == "binomial":
        return (out_dt in NATIVE_DTYPES and a_dt in NATIVE_DTYPES and a_dt != "bool"
                and not is_float(a_dt) and is_float(b_dt))
    return is_float(out_dt) and is_float(a_dt) and is_float(b_dt)


@register_lowering(RandomVariable)
def lower_random(node: Apply) -> NativeNode | None:
    op = node.op
    k = op._n_size_inputs()
    a, bv = node.inputs[1 + k], node.inputs[2 + k]
    out_dt = node.outputs[1].dtype
    ndim = op.ndim
    if not _native_params(op.dist, out_dt, a.dtype, bv.dtype) or max(a.ndim, bv.ndim) > ndim:
        return None
    # A parameter statically of size 1 is a register: the kernel reads only its data pointer.
    a_nd = 0 if all(s == 1 for s in a.type.shape) else a.ndim
    b_nd = 0 if all(s == 1 for s in bv.type.shape) else bv.ndim
    size_dts = tuple(v.dtype for v in node.inputs[1:1 + k])
    name = kernel_id("gcrandom", VERSION, op.dist, out_dt, a.dtype, bv.dtype, a_nd, b_nd, ndim, CHUNK,
                     op.size_kind, size_dts)

    def build(module: ir.Module) -> None:
        build_random(module, name, op.dist, out_dt, a.dtype, bv.dtype, a_nd, b_nd, ndim, op.size_kind,
                     size_dts)

    return NativeNode(name, 5 + k, build, lambda cfunc: _runner(node, cfunc, a_nd, b_nd))


def _runner(node: Apply, cfunc: Callable[..., int], a_nd: int, b_nd: int) -> Runner:
    from graphc.backend.llvm.executor import WHOLE, _run_split, kernel_threads

    op = node.op
    kind, ndim = op.size_kind, op.ndim
    k = op._n_size_inputs()
    gate = Gate(node)
    get_state, get_params = gate.getter((0,)), gate.getter((1 + k, 2 + k))
    alloc_state, alloc_out = gate.allocator(0), gate.allocator(1)
    threads = kernel_threads()
    split_min = SPLIT_MIN[op.dist]
    get_sizes = gate.getter(range(1, 1 + k)) if k else None

    def size_of(sizes: list[np.ndarray], a: np.ndarray, bb: np.ndarray) -> tuple[int, ...] | None:
        if kind == "vector":
            shape = tuple(sizes[0].tolist())
            if len(shape) != ndim:
                return None
        elif kind == "scalars":
            shape = tuple(int(s) for s in sizes)
        else:
            try:
                shape = np.broadcast_shapes(a.shape, bb.shape)
            except ValueError:
                return None
            shape = (1,) * (ndim - len(shape)) + shape
        return shape

    def run(values: list[Any]) -> list[Any]:
        (state,) = get_state(values)
        a, bb = get_params(values)
        sizes = get_sizes(values) if get_sizes is not None else []
        shape = size_of(sizes, a, bb)
        if (shape is None or state.shape != (2,) or not _fits(a.shape, shape) or not _fits(bb.shape, shape)
                or (a_nd == 0 and a.size != 1) or (b_nd == 0 and bb.size != 1)
                or any(s < 0 for s in shape)):
            return run_node(node, values)  # the reference computes it or raises its error
        try:
            out = alloc_out(shape)
        except (ValueError, MemoryError):
            return run_node(node, values)
        new_state = alloc_state((2,))
        n = out.size
        args = [state, *sizes, a, bb, new_state, out]
        if n >= split_min and threads > 1:
            rc = _run_split(cfunc, n, args, threads)
        else:
            rc = cfunc(0, WHOLE, *args)
        if rc:
            return run_node(node, values)
        return [new_state, out]

    return run
