"""Kernels for advanced indexing in general: boolean masks and integer arrays on any axes,
mixed with scalars, slices, ``None`` and ``Ellipsis`` (``x[mask]``, ``x[i, j]``,
``x[:, idx]``, ``x[i, :, j]``, index arrays broadcasting against each other), read
(``Subtensor``) and updated (``IncSubtensor``: set, or inc accumulating repeated indices
like ``np.add.at``). graphc.backend.llvm.index_kernels keeps the common ``x[idx]`` form,
and holds these kernels' lowering: the Layout of an index and the runner (the gate).

One kernel per node, its phase given as the calling convention's ``start`` (and ``stop``):

- phase 0 (nodes with masks): count each mask's true entries (its shape checked against
  ``x``'s axes), so the runner can allocate;
- phase 1 (masks mixed with other indices): each mask's coordinates, as NumPy's
  ``nonzero`` (a ``(k, count)`` int64 array), which then index like ``k`` integer arrays;
- phase 2: the copy (read) or the update, looping over the result in C order.

A lone leading mask (``x[mask]``, ``x[mask] = y``) skips phase 1: phase 2 walks the mask.

Index arrays broadcast against each other; NumPy puts the broadcast dimensions where the
advanced indices stand (or in front when they are separated) — the Layout follows
graphc.ops.subtensor.index_static_shape. Every index is checked where it is read
(negative indices wrap once). As NumPy, every element of every index array is checked
when the broadcast result is not empty: the main loop reads them all, unless a result
dimension in front of the broadcast ones is empty (then a pass of its own checks them).
Scalar indices are checked
always, slices (normalized by the runner) and every shape the kernel relies on are
checked on entry. Any failure returns status 1: the runner runs the reference, which
raises NumPy's error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llvmlite import ir

from graphc.backend.llvm.index_kernels import COORDS, COUNT, Layout, _row_index
from graphc.backend.llvm.irutil import I32, I64, is_float
from graphc.backend.llvm.lowering import Arr, c64, entry_alloca, for_range, nest, new_kernel


class _Fail:
    """``check(ok)``: continue when ``ok``, else return status 1."""

    def __init__(self, fn: ir.Function, b: ir.IRBuilder) -> None:
        self.b = b
        self.block = fn.append_basic_block("fail")
        ir.IRBuilder(self.block).ret(ir.Constant(I32, 1))

    def check(self, ok: ir.Value) -> None:
        cont = self.b.append_basic_block("ok")
        self.b.cbranch(ok, cont, self.block)
        self.b.position_at_end(cont)


def _in_range(b: ir.IRBuilder, v: ir.Value, n: ir.Value) -> ir.Value:
    return b.and_(b.icmp_signed(">=", v, c64(0)), b.icmp_signed("<", v, n))


def _bstride(b: ir.IRBuilder, dim: ir.Value, stride: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("==", dim, c64(1)), c64(0), stride)


def _unit(k: int, n: int) -> list[ir.Value]:
    return [c64(1 if d == k else 0) for d in range(n)]


def _count(b: ir.IRBuilder, fail: _Fail, x: Arr, mask: Arr, axis: int) -> ir.Value:
    for d in range(mask.ndim):
        fail.check(b.icmp_signed("==", mask.dims[d], x.dims[axis + d]))
    acc = entry_alloca(b, I64)
    b.store(c64(0), acc)
    nest(b, mask.dims, [mask.strides], [c64(0)],
         lambda o: b.store(b.add(b.load(acc, typ=I64), b.zext(mask.load(o[0]), I64)), acc))
    return b.load(acc, typ=I64)


def _when(b: ir.IRBuilder, cond: ir.Value, body: Callable[[], None]) -> None:
    then = b.append_basic_block("then")
    after = b.append_basic_block("endif")
    b.cbranch(cond, then, after)
    b.position_at_end(then)
    body()
    b.branch(after)
    b.position_at_end(after)


def _coords(b: ir.IRBuilder, fail: _Fail, mask: Arr, coords: Arr) -> None:
    """``coords[d, c] = d-th index of the c-th true entry`` (C order), NumPy's ``nonzero``.
    Branch-free as ``_direct_elements``: every position is written at column ``c``, which
    advances by the mask bit; the loop stops once the ``n`` columns are written."""
    k = mask.ndim
    n = coords.dims[1]
    fail.check(b.icmp_signed("==", coords.dims[0], c64(k)))
    cnt = entry_alloca(b, I64)
    b.store(c64(0), cnt)
    done = b.append_basic_block("done")

    def one(o: list[ir.Value]) -> None:
        c = b.load(cnt, typ=I64)
        go = b.append_basic_block("put")
        b.cbranch(b.icmp_signed("<", c, n), go, done)
        b.position_at_end(go)
        col = b.mul(c, coords.strides[1])
        for d in range(k):
            coords.store(o[1 + d], b.add(b.mul(c64(d), coords.strides[0]), col))
        b.store(b.add(c, b.zext(mask.load(o[0]), I64)), cnt)

    nest(b, mask.dims, [mask.strides] + [_unit(d, k) for d in range(k)], [c64(0)] * (1 + k), one)
    b.branch(done)
    b.position_at_end(done)
    fail.check(b.icmp_signed("==", b.load(cnt, typ=I64), n))


@dataclass(frozen=True)
class Spec:
    """Everything a kernel's code depends on (its name is a hash of it)."""

    mode: str  # "take", "set", "inc"
    dtype: str
    xnd: int
    ynd: int
    lay: Layout
    idtypes: tuple  # dtypes of the index arrays, then of the scalar inputs

    def nargs(self) -> int:
        lay = self.lay
        n = 2 + (self.mode != "take") + bool(lay.slices) + len(lay.arrays) + len(lay.syms)
        if lay.masks:
            n += 2 * len(lay.masks) + 1 - (len(lay.masks) if lay.direct else 0)  # masks, coords, counts
        return n


def build(module: ir.Module, name: str, spec: Spec) -> None:
    lay, dtype = spec.lay, spec.dtype
    fn, b, args = new_kernel(module, name, spec.nargs())
    fail = _Fail(fn, b)
    it = iter(args)
    px = next(it)
    py = next(it) if spec.mode != "take" else None
    pp = next(it) if lay.slices else None
    pa = [next(it) for _ in lay.arrays]
    pm = [next(it) for _ in lay.masks]
    ps = [next(it) for _ in lay.syms]
    pc = [next(it) for _ in lay.masks] if lay.masks and not lay.direct else []
    pn = next(it) if lay.masks else None
    po = next(it)
    x = Arr(b, px, dtype, spec.xnd)
    phase = fn.args[0]
    main = fn.append_basic_block("main")
    if lay.masks:
        count_bb, coords_bb = fn.append_basic_block("count"), fn.append_basic_block("coords")
        sw = b.switch(phase, main)
        sw.add_case(c64(COUNT), count_bb)
        sw.add_case(c64(COORDS), coords_bb)
        b.position_at_end(count_bb)
        counts = Arr(b, pn, "int64", 1)
        fail.check(b.icmp_signed("==", counts.dims[0], c64(len(lay.masks))))
        for k, (_, nd, axis) in enumerate(lay.masks):
            c = _count(b, fail, x, Arr(b, pm[k], "bool", nd), axis)
            counts.store(c, b.mul(c64(k), counts.strides[0]))
        b.ret(ir.Constant(I32, 0))
        b.position_at_end(coords_bb)
        for k, (_, nd, _) in enumerate(lay.masks if pc else ()):
            _coords(b, fail, Arr(b, pm[k], "bool", nd), Arr(b, pc[k], "int64", 2))
        b.ret(ir.Constant(I32, 0))
    else:
        b.branch(main)
    b.position_at_end(main)
    if lay.direct:
        _main_direct(b, fail, spec, x, py, pm[0], po)
    else:
        _main(b, fail, spec, x, py, pp, pa, ps, pc, po)
    b.ret(ir.Constant(I32, 0))


def _prepare(b: ir.IRBuilder, fail: _Fail, spec: Spec, x: Arr, py: Any, po: Any,
             tdims: Callable[[Arr], list[ir.Value]]) -> tuple[Arr, Arr, Arr, Arr | None]:
    """(out, the array indexed (x or out), y or None): shapes checked, ``out = x`` for updates."""
    if spec.mode == "take":
        out = Arr(b, po, spec.dtype, len(spec.lay.outs))
        for d, t in zip(out.dims, tdims(x)):
            fail.check(b.icmp_signed("==", d, t))
        return out, x, None
    out = Arr(b, po, spec.dtype, spec.xnd)
    y = Arr(b, py, spec.dtype, spec.ynd)
    for d, t in zip(out.dims, x.dims):
        fail.check(b.icmp_signed("==", d, t))
    nest(b, x.dims, [x.strides, out.strides], [c64(0), c64(0)], lambda o: out.store(x.load(o[0]), o[1]))
    tgt = tdims(x)
    for i in range(spec.ynd):
        t = tgt[len(tgt) - spec.ynd + i]
        fail.check(b.or_(b.icmp_signed("==", y.dims[i], c64(1)), b.icmp_signed("==", y.dims[i], t)))
    return out, out, y


def _value_strides(b: ir.IRBuilder, spec: Spec, out: Arr, y: Arr | None) -> list[ir.Value]:
    """Per result dimension, the stride of the value read (update) or written (take)."""
    n = len(spec.lay.outs)
    if y is None:
        return list(out.strides)
    return [_bstride(b, y.dims[d - (n - spec.ynd)], y.strides[d - (n - spec.ynd)]) if d >= n - spec.ynd
            else c64(0) for d in range(n)]


def _element(b: ir.IRBuilder, spec: Spec, src: Arr, out: Arr, y: Arr | None, a_off: ir.Value,
             v_off: ir.Value) -> None:
    if y is None:
        out.store(src.load(a_off), v_off)
        return
    v = y.load(v_off)
    if spec.mode == "inc":
        old = out.load(a_off)
        v = b.fadd(old, v) if is_float(spec.dtype) else b.add(old, v)
    out.store(v, a_off)


def _main(b: ir.IRBuilder, fail: _Fail, spec: Spec, x: Arr, py: Any, pp: Any, pa: list, ps: list,
          pc: list, po: Any) -> None:
    lay = spec.lay
    params = Arr(b, pp, "int64", 1) if pp is not None else None
    if params is not None:
        fail.check(b.icmp_signed(">=", params.dims[0], c64(3 * len(lay.slices))))
    arr_nd = [s[2] for s in lay.sources if s[0] == "arr"]
    arrays = [Arr(b, p, spec.idtypes[k], arr_nd[k]) for k, p in enumerate(pa)]
    syms = [Arr(b, p, spec.idtypes[len(pa) + k], 0) for k, p in enumerate(ps)]
    coords = [Arr(b, p, "int64", 2) for p in pc]
    for k, (_, nd, _) in enumerate(lay.masks):
        fail.check(b.icmp_signed("==", coords[k].dims[0], c64(nd)))
    # Each source: (array, base offset, dims, element strides, axis of x it indexes).
    srcs = []
    for s in lay.sources:
        if s[0] == "arr":
            a = arrays[s[1]]
            srcs.append((a, c64(0), a.dims, a.strides, s[3]))
        else:
            c = coords[s[1]]
            srcs.append((c, b.mul(c64(s[2]), c.strides[0]), c.dims[1:], c.strides[1:], s[3]))
    G = lay.group
    gd = []
    for j in range(G):
        g: ir.Value = c64(1)
        for _, _, dims, _, _ in srcs:
            i = j - (G - len(dims))
            if i >= 0:
                g = b.select(b.icmp_signed("!=", dims[i], c64(1)), dims[i], g)
        gd.append(g)
    for _, _, dims, _, _ in srcs:
        for i, d in enumerate(dims):
            g = gd[i + G - len(dims)]
            fail.check(b.or_(b.icmp_signed("==", d, c64(1)), b.icmp_signed("==", d, g)))
    # Slices: start, step, length from the runner, checked against x.
    sl = []
    for k, (axis, _) in enumerate(lay.slices):
        start, step, length = (params.load(c64(3 * k + i)) for i in range(3))
        n = x.dims[axis]
        last = b.add(start, b.mul(b.sub(length, c64(1)), step))
        ok = b.and_(_in_range(b, start, n), _in_range(b, last, n))
        fail.check(b.or_(b.icmp_signed("==", length, c64(0)), b.and_(ok, b.icmp_signed(">", length, c64(0)))))
        sl.append((start, step, length))

    def tdims(a: Arr) -> list[ir.Value]:
        out = []
        for o in lay.outs:
            if o[0] == "g":
                out.append(gd[o[1]])
            elif o[0] == "new":
                out.append(c64(1))
            else:
                ax = lay.axes[o[1]]
                out.append(sl[ax[1]][2] if ax[0] == "slice" else a.dims[o[1]])
        return out

    out, src, y = _prepare(b, fail, spec, x, py, po, tdims)
    td = tdims(x)
    base: ir.Value = c64(0)
    for axis, ax in enumerate(lay.axes):
        if ax[0] == "int":
            r = c64(ax[1])
            r = b.select(b.icmp_signed("<", r, c64(0)), b.add(r, x.dims[axis]), r)
            fail.check(_in_range(b, r, x.dims[axis]))
        elif ax[0] == "sym":
            sym = syms[ax[1]]
            if sym.dtype == "uint64":  # a Python int for NumPy: 2**63 and up are out of range
                fail.check(b.icmp_signed(">=", sym.load(c64(0)), c64(0)))
            r, ok = _row_index(b, sym, c64(0), x.dims[axis])
            fail.check(ok)
        elif ax[0] == "slice":
            r = sl[ax[1]][0]
        else:
            continue
        base = b.add(base, b.mul(r, src.strides[axis]))
    # NumPy checks every index when the broadcast result is not empty. The main loop reads
    # (and checks) every one of them unless a result dimension in front of the broadcast
    # ones is empty: only then a pass of its own checks them.
    size: ir.Value = c64(1)
    for g in gd:
        size = b.mul(size, g)
    outer: ir.Value = c64(1)
    for t in td[:lay.at]:
        outer = b.mul(outer, t)

    def check_all() -> None:
        for a, off, dims, strides, axis in srcs:
            nest(b, dims, [strides], [off], lambda o, a=a, axis=axis: fail.check(
                _row_index(b, a, o[0], x.dims[axis])[1]))

    _when(b, b.and_(b.icmp_signed("!=", size, c64(0)), b.icmp_signed("==", outer, c64(0))), check_all)
    vstr = _value_strides(b, spec, out, y)
    astr = []
    for o in lay.outs:
        ax = lay.axes[o[1]] if o[0] == "x" else None
        if ax is None:
            astr.append(c64(0))
        else:
            astr.append(b.mul(sl[ax[1]][1], src.strides[o[1]]) if ax[0] == "slice" else src.strides[o[1]])
    sstr = []
    for _, _, dims, strides, _ in srcs:
        row = []
        for o in lay.outs:
            i = o[1] - (G - len(dims)) if o[0] == "g" else -1
            row.append(_bstride(b, dims[i], strides[i]) if i >= 0 else c64(0))
        sstr.append(row)
    D = len(lay.outs)

    def level(d: int, a_off: ir.Value, v_off: ir.Value, s_offs: list[ir.Value]) -> None:
        if d == lay.at + G:  # the whole group is fixed: read the indices once
            for (a, _, _, _, axis), so in zip(srcs, s_offs):
                r, ok = _row_index(b, a, so, x.dims[axis])
                fail.check(ok)
                a_off = b.add(a_off, b.mul(r, src.strides[axis]))
        if d == D:
            _element(b, spec, src, out, y, a_off, v_off)
            return
        def step(j: ir.Value) -> None:
            level(d + 1, b.add(a_off, b.mul(j, astr[d])), b.add(v_off, b.mul(j, vstr[d])),
                  [b.add(so, b.mul(j, sstr[k][d])) for k, so in enumerate(s_offs)])

        for_range(b, td[d], step)

    level(0, base, c64(0), [s[1] for s in srcs])


def _main_direct(b: ir.IRBuilder, fail: _Fail, spec: Spec, x: Arr, py: Any, pm: Any, po: Any) -> None:
    """``x[mask]`` / its update with the mask on the leading axes: walk the mask once."""
    _, k, _ = spec.lay.masks[0]
    n = len(spec.lay.outs)
    mask = Arr(b, pm, "bool", k)
    for d in range(k):
        fail.check(b.icmp_signed("==", mask.dims[d], x.dims[d]))
    if spec.mode == "take":
        first = Arr(b, po, spec.dtype, n).dims[0]  # the count, checked at the end
    else:  # y's first dimension (when it has one) is checked per row
        first = Arr(b, py, spec.dtype, spec.ynd).dims[0] if spec.ynd == n else c64(1)
    out, src, y = _prepare(b, fail, spec, x, py, po, lambda a: [first] + list(a.dims[k:]))
    vstr = _value_strides(b, spec, out, y)
    cnt = entry_alloca(b, I64)
    b.store(c64(0), cnt)
    if k == spec.xnd and (y is None or spec.ynd == n):
        _direct_elements(b, fail, spec, mask, src, out, y, vstr[0], first, cnt)
        return

    def one(o: list[ir.Value]) -> None:
        def row() -> None:
            c = b.load(cnt, typ=I64)
            ok = b.icmp_signed("<", c, first)
            fail.check(ok if y is None else b.or_(ok, b.icmp_signed("==", vstr[0], c64(0))))
            nest(b, x.dims[k:], [src.strides[k:], vstr[1:]], [o[1], b.mul(c, vstr[0])],
                 lambda r: _element(b, spec, src, out, y, r[0], r[1]))
            b.store(b.add(c, c64(1)), cnt)

        _when(b, mask.load(o[0]), row)

    nest(b, mask.dims, [mask.strides, src.strides[:k]], [c64(0), c64(0)], one)
    if y is None:
        fail.check(b.icmp_signed("==", b.load(cnt, typ=I64), first))


def _direct_elements(b: ir.IRBuilder, fail: _Fail, spec: Spec, mask: Arr, src: Arr, out: Arr,
                     y: Arr | None, vstr0: ir.Value, first: ir.Value, cnt: ir.Value) -> None:
    """A mask over every axis, without a branch on the mask (random masks mispredict half
    the time): a read stores every element at ``out[c]`` and advances ``c`` by the mask bit,
    stopping once the ``first`` true entries are written; an update with one value per true
    entry reads ``y[c]`` (clamped in range) and stores the old or new value."""
    if y is not None:  # an empty y (a no-op): the reference, so that y[0] below exists
        fail.check(b.or_(b.icmp_signed(">", first, c64(0)), b.icmp_signed("==", vstr0, c64(0))))
    done = b.append_basic_block("done")

    def one(o: list[ir.Value]) -> None:
        c = b.load(cnt, typ=I64)
        m = mask.load(o[0])
        inside = b.icmp_signed("<", c, first)
        if y is None:
            go = b.append_basic_block("store")
            b.cbranch(inside, go, done)
            b.position_at_end(go)
            out.store(src.load(o[1]), b.mul(c, vstr0))
        else:
            fail.check(b.or_(b.or_(b.not_(m), inside), b.icmp_signed("==", vstr0, c64(0))))
            v = y.load(b.mul(b.select(inside, c, c64(0)), vstr0))
            old = out.load(o[1])
            if spec.mode == "inc":
                v = b.fadd(old, v) if is_float(spec.dtype) else b.add(old, v)
            out.store(b.select(m, v, old), o[1])
        b.store(b.add(c, b.zext(m, I64)), cnt)

    nest(b, mask.dims, [mask.strides, src.strides], [c64(0), c64(0)], one)
    b.branch(done)
    b.position_at_end(done)
    if y is None:
        fail.check(b.icmp_signed("==", b.load(cnt, typ=I64), first))
