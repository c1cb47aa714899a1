"""Argmax/argmin kernels (lowered in reduce_kernels): the index of the first maximum
(minimum) over the reduced axes flattened in order, the first NaN if any.

One pass over the data: each block's extreme (a vectorized fold of ordered integer keys
for floats, see reduce_kernels._key); a block that strictly beats the running extreme is
recorded (ties keep the earlier block); after the last block the recorded block alone is
searched again for the first position holding the extreme. After the first NaN (the
extreme key) the remaining blocks are skipped.
"""

from __future__ import annotations

from llvmlite import ir

from graphc.backend.llvm.expr import ScalarDAG, s_input
from graphc.backend.llvm.irutil import I32, I64, call_intr, is_float
from graphc.backend.llvm.lowering import c64, entry_alloca, for_range, nest
from graphc.backend.llvm.reduce_kernels import (
    EXTREME_BLOCK,
    _Acc,
    _blocks,
    _contiguous_strides,
    _setup,
    _Values,
)


def build_argreduce(module: ir.Module, name: str, dtype: str, ndim: int, axes: tuple[int, ...],
                    kind: str) -> None:
    """Index of the first maximum (minimum) over ``axes`` flattened; the first NaN if any.

    Two passes that both vectorize: the extreme itself (a max/min fold), then the
    smallest flat index holding it (a min fold over candidate indices)."""
    dag = ScalarDAG([(dtype, False)], [s_input(0, dtype)])
    kept = [d for d in range(ndim) if d not in axes]
    b, (x,), out, shape, strides, ctx, status = _setup(module, name, dag, ndim, "int64", len(kept))
    ostr = _contiguous_strides(b, [shape[d] for d in kept])
    xs = strides[0]
    kept_loops = ([shape[d] for d in kept], [[xs[d] for d in kept], ostr])
    if not axes:  # nothing reduced: every index is 0
        nest(b, *kept_loops, [c64(0), c64(0)], lambda offs: out.store(c64(0), offs[1]))
        b.ret(b.load(status, typ=I32))
        return
    acc = _Acc("max" if kind == "argmax" else "min", dtype, dtype)
    vals = _Values(b, ctx, dag, [x], EXTREME_BLOCK)
    inner, outer = axes[-1], list(axes[:-1])
    flat = _contiguous_strides(b, [shape[d] for d in axes])[:-1]
    ext, part = entry_alloca(b, acc.ty), entry_alloca(b, acc.ty)
    jpos = entry_alloca(b, I32)
    # The block holding the extreme so far: input offset of its row, flat offset, first, length.
    # found == 0 until a block is recorded.
    saved = [entry_alloca(b, I64) for _ in range(4)]
    found = entry_alloca(b, ir.IntType(1))
    nan_key = acc.nan_key()

    def per_output(offs: list[ir.Value]) -> None:
        b.store(acc.identity(), ext)
        b.store(ir.Constant(ir.IntType(1), 0), found)

        def block(roffs: list[ir.Value], first: ir.Value, m: ir.Value) -> None:
            go = ir.Constant(ir.IntType(1), 1)
            if nan_key is not None:  # after the first NaN nothing can change the answer
                go = b.or_(b.not_(b.load(found, typ=ir.IntType(1))),
                           b.icmp_signed("!=", b.load(ext, typ=acc.ty), nan_key))
            with b.if_then(go):
                value = vals.block(roffs[:1], [xs[inner]], first, m)
                b.store(acc.identity(), part)
                for_range(b, m, lambda j: b.store(
                    acc.fold(b, b.load(part, typ=acc.ty), acc.value(b, value(j))), part))
                best = b.load(part, typ=acc.ty)
                # Ties keep the earlier block; only the last recorded block is searched.
                improves = b.or_(b.not_(b.load(found, typ=ir.IntType(1))),
                                 acc.better(b, best, b.load(ext, typ=acc.ty)))
                with b.if_then(improves):
                    for slot, v in zip(saved, (roffs[0], roffs[1], first, m)):
                        b.store(v, slot)
                    b.store(best, ext)
                    b.store(ir.Constant(ir.IntType(1), 1), found)

        def row(roffs: list[ir.Value]) -> None:
            _blocks(b, shape[inner], lambda first, m: block(roffs, first, m), EXTREME_BLOCK)

        nest(b, [shape[d] for d in outer], [[xs[d] for d in outer], flat], [offs[0], c64(0)], row)
        # One search, in the first block holding the extreme: its first position holding it.
        xoff, foff, first, m = (b.load(slot, typ=I64) for slot in saved)
        value = vals.block([xoff], [xs[inner]], first, m)
        best = b.load(ext, typ=acc.ty)
        m32 = b.trunc(m, I32)  # block positions in 32 bits: twice the lanes
        b.store(m32, jpos)

        def step(j: ir.Value) -> None:
            v = acc.value(b, value(j))
            hit = b.fcmp_ordered("==", v, best) if is_float(acc.dtype) else b.icmp_unsigned("==", v, best)
            b.store(call_intr(b, "smin", b.load(jpos, typ=I32), b.select(hit, b.trunc(j, I32), m32)), jpos)

        for_range(b, m, step)
        out.store(b.add(b.add(foff, first), b.zext(b.load(jpos, typ=I32), I64)), offs[1])

    nest(b, *kept_loops, [c64(0), c64(0)], per_output)
    b.ret(b.load(status, typ=I32))
