"""Kernels for advanced indexing in general: boolean masks and integer arrays on any axes,
mixed with scalars, slices, ``None`` and ``Ellipsis`` (``x[mask]``, ``x[i, j]``,
``x[:, idx]``, ``x[i, :, j]``, index arrays broadcasting against each other), read
(``Subtensor``) and updated (``IncSubtensor``: set, or inc accumulating repeated indices
like ``np.add.at``). graphc.backend.llvm.index_kernels keeps the common ``x[idx]`` form.

One kernel per node, its phase chosen by the calling convention's ``start`` argument:

- phase 0 (nodes with masks): count each mask's true entries (its shape checked against
  ``x``'s axes), so the runner can allocate;
- phase 1 (masks mixed with other indices): each mask's coordinates, as NumPy's
  ``nonzero`` (a ``(k, count)`` int64 array), which then index like ``k`` integer arrays;
- phase 2: the copy (read) or the update, looping over the result in C order.

A lone leading mask (``x[mask]``, ``x[mask] = y``) skips phase 1: phase 2 walks the mask.

Index arrays broadcast against each other; NumPy puts the broadcast dimensions where the
advanced indices stand (or in front when they are separated) — the layout below follows
graphc.ops.subtensor.index_static_shape. Every index is checked before use (negative
indices wrap once): when the broadcast result is not empty, a first pass checks every
element of every index array, as NumPy does, and the main loop checks again (another
thread may write to an index array while the kernel runs). Scalar indices are checked
always, slices (normalized by the runner) and every shape the kernel relies on are
checked on entry. Any failure returns status 1: the runner runs the reference, which
raises NumPy's error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.index_kernels import _ok_dtypes, _row_index
from graphc.backend.llvm.irutil import I32, I64, NATIVE_DTYPES, is_float
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
)
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.subtensor import SYM, _pair_inputs

Runner = Callable[[list[Any]], list[Any]]
COUNT, COORDS, MAIN = 0, 1, 2  # the phases (the kernel's ``start`` argument)
_FULL = ((None, None, None), (None, None, 1))


@dataclass(frozen=True)
class Layout:
    """Where each axis of ``x`` and of the result comes from (static: from the index and ranks).

    ``axes[a]``: ``("full",)``, ``("slice", s)`` (params ``3s..3s+2``: start, step, length),
    ``("int", c)``, ``("sym", k)`` (the k-th scalar input), ``("adv", k)`` (the k-th source).
    ``sources``: ``("arr", k, ndim, axis)`` (k-th index array) or ``("mask", k, row, axis)``
    (row ``row`` of mask k's coordinates, one dimension). ``outs``: per result dimension
    ``("x", axis)``, ``("new",)`` or ``("g", j)`` (j-th broadcast dimension of the sources).
    ``arrays``/``masks``/``syms``/``slices``: node input positions (masks with their rank
    and first axis; slices with their axis and parts, an input position as ``("in", p)``).
    """

    axes: tuple
    sources: tuple
    outs: tuple
    arrays: tuple
    masks: tuple
    syms: tuple
    slices: tuple
    group: int  # number of broadcast dimensions
    at: int  # where they are in the result

    @property
    def masks_pos(self) -> tuple:
        return tuple(m[0] for m in self.masks)

    @property
    def direct(self) -> bool:
        """A lone leading mask: phase 2 walks the mask itself."""
        return (len(self.masks) == 1 and not self.arrays and not self.syms and not self.slices
                and self.masks[0][2] == 0 and all(a[0] in ("full", "adv") for a in self.axes)
                and self.outs[0] == ("g", 0) and all(o[0] == "x" for o in self.outs[1:]))


def layout(idx_list: Sequence[tuple], xnd: int, inputs: Sequence[Any], first: int) -> Layout:
    """The Layout of ``x[idx_list]``; ``inputs``: the index inputs (node inputs from ``first``)."""
    paired = _pair_inputs(idx_list, list(range(first, first + len(inputs))))
    nd = {first + k: v.ndim for k, v in enumerate(inputs)}
    consumed = sum(1 if e[0] in "isa" else nd[ins[0]] if e[0] == "m" else 0 for e, ins in paired)
    axes: list[tuple] = [("full",)] * xnd
    outs: list[tuple] = []
    sources: list[tuple] = []
    arrays: list[int] = []
    masks: list[tuple] = []
    syms: list[int] = []
    slices: list[tuple] = []
    state, group_at, axis = "before", 0, 0
    for e, ins in paired:
        kind = e[0]
        advanced = kind in "ami"  # a scalar in a fancy index is an advanced index
        if advanced and state == "before":
            group_at, state = len(outs), "in"
        elif advanced and state == "after":
            state = "split"
        elif not advanced and state == "in":
            state = "after"
        if kind == "n":
            outs.append(("new",))
        elif kind == "e":
            for a in range(axis, axis + xnd - consumed):
                outs.append(("x", a))
            axis += xnd - consumed
        elif kind == "i":
            if e[1] == SYM:
                axes[axis] = ("sym", len(syms))
                syms.append(ins[0])
            else:
                axes[axis] = ("int", e[1])
            axis += 1
        elif kind == "s":
            if e[1:] not in _FULL:
                it = iter(ins)
                parts = tuple(("in", next(it)) if p == SYM else p for p in e[1:])
                axes[axis] = ("slice", len(slices))
                slices.append((axis, parts))
            outs.append(("x", axis))
            axis += 1
        elif kind == "a":
            axes[axis] = ("adv", len(sources))
            sources.append(("arr", len(arrays), nd[ins[0]], axis))
            arrays.append(ins[0])
            axis += 1
        else:
            k = nd[ins[0]]
            for d in range(k):
                axes[axis + d] = ("adv", len(sources))
                sources.append(("mask", len(masks), d, axis + d))
            masks.append((ins[0], k, axis))
            axis += k
    outs.extend(("x", a) for a in range(axis, xnd))
    group = max(s[2] if s[0] == "arr" else 1 for s in sources)
    at = 0 if state == "split" else group_at
    outs[at:at] = [("g", j) for j in range(group)]
    return Layout(tuple(axes), tuple(sources), tuple(outs), tuple(arrays), tuple(masks), tuple(syms),
                  tuple(slices), group, at)


# -- the kernel --------------------------------------------------------------------------------
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
    """``coords[d, c] = d-th index of the c-th true entry`` (C order), every write checked."""
    k = mask.ndim
    fail.check(b.icmp_signed("==", coords.dims[0], c64(k)))
    cnt = entry_alloca(b, I64)
    b.store(c64(0), cnt)

    def one(o: list[ir.Value]) -> None:
        def put() -> None:
            c = b.load(cnt, typ=I64)
            fail.check(b.icmp_signed("<", c, coords.dims[1]))
            col = b.mul(c, coords.strides[1])
            for d in range(k):
                coords.store(o[1 + d], b.add(b.mul(c64(d), coords.strides[0]), col))
            b.store(b.add(c, c64(1)), cnt)

        _when(b, mask.load(o[0]), put)

    nest(b, mask.dims, [mask.strides] + [_unit(d, k) for d in range(k)], [c64(0)] * (1 + k), one)
    fail.check(b.icmp_signed("==", b.load(cnt, typ=I64), coords.dims[1]))


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
            r, ok = _row_index(b, syms[ax[1]], c64(0), x.dims[axis])
            fail.check(ok)
        elif ax[0] == "slice":
            r = sl[ax[1]][0]
        else:
            continue
        base = b.add(base, b.mul(r, src.strides[axis]))
    # NumPy checks every index when the broadcast result is not empty.
    size: ir.Value = c64(1)
    for g in gd:
        size = b.mul(size, g)

    def check_all() -> None:
        for a, off, dims, strides, axis in srcs:
            nest(b, dims, [strides], [off], lambda o, a=a, axis=axis: fail.check(
                _row_index(b, a, o[0], x.dims[axis])[1]))

    _when(b, b.icmp_signed("!=", size, c64(0)), check_all)
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


# -- lowering and runner -------------------------------------------------------------------------
def _slice_params(lay: Layout, values: Sequence[Any], shape: tuple[int, ...]) -> np.ndarray | None:
    """start, step, length per slice (NumPy's normalization), or None (the reference raises)."""
    out: list[int] = []
    for axis, parts in lay.slices:
        try:
            bounds = [int(values[p[1]]) if isinstance(p, tuple) else p for p in parts]
            start, stop, step = slice(*bounds).indices(shape[axis])
        except (ValueError, TypeError, OverflowError):
            return None
        out += [start, step, len(range(start, stop, step))]
    return np.array(out, dtype=np.int64)


def lower_adv(node: Apply) -> NativeNode | None:
    """The lowering of a Subtensor/IncSubtensor with an advanced index other than ``x[idx]``."""
    op = node.op
    idx_list = op.idx_list
    if not any(e[0] in "am" for e in idx_list):
        return None  # basic indexing: a view, no kernel
    take = not hasattr(op, "set_instead_of_inc")
    x = node.inputs[0]
    first = 1 if take else 2
    index_inputs = node.inputs[first:]
    if x.ndim < 1 or x.dtype not in NATIVE_DTYPES:
        return None
    if not take:
        y = node.inputs[1]
        if y.dtype != x.dtype or (not op.set_instead_of_inc and x.dtype == "bool"):
            return None
    lay = layout(idx_list, x.ndim, index_inputs, first)
    ins = node.inputs
    if not all(_ok_dtypes(x.dtype, ins[p].dtype) for p in lay.arrays + lay.syms):
        return None
    if any(ins[p[1]].dtype[0] not in "iu" for _, parts in lay.slices for p in parts if isinstance(p, tuple)):
        return None
    mode = "take" if take else ("set" if op.set_instead_of_inc else "inc")
    spec = Spec(mode, x.dtype, x.ndim, 0 if take else node.inputs[1].ndim, lay,
                tuple(ins[p].dtype for p in lay.arrays + lay.syms))
    name = kernel_id("gcadvidx", spec)
    return NativeNode(name, spec.nargs(), lambda m: build(m, name, spec), lambda cf: _runner(node, spec, cf))


def _runner(node: Apply, spec: Spec, cf: Callable[..., int]) -> Runner:
    lay = spec.lay
    take = spec.mode == "take"
    gate = Gate(node)
    get, alloc = gate.getter(range(len(node.inputs))), gate.allocator(0)
    n_masks = len(lay.masks)
    out_ndim = len(lay.outs)

    def run(values: list[Any]) -> list[Any]:
        vals = get(values)
        a = vals[0]
        shape = a.shape
        head = [a] if take else [a, vals[1]]
        if lay.slices:
            params = _slice_params(lay, values, shape)
            if params is None:
                return run_node(node, values)
            head.append(params)
        middle = [vals[p] for p in lay.arrays + lay.masks_pos + lay.syms]
        src_shapes = [vals[p].shape for p in lay.arrays]
        tail: list[np.ndarray] = []
        if n_masks:
            counts = np.empty(n_masks, np.int64)
            for p, k, axis in lay.masks:
                if vals[p].shape != shape[axis: axis + k]:
                    return run_node(node, values)  # the reference's IndexError
            coords_dummy = [counts] * (0 if lay.direct else n_masks)
            if cf(COUNT, COUNT, *head, *middle, *coords_dummy, counts, counts):
                return run_node(node, values)
            if lay.direct:
                tail = [counts]
            else:
                coords = [np.empty((k, int(c)), np.int64) for (_, k, _), c in zip(lay.masks, counts)]
                tail = coords + [counts]
                if cf(COORDS, COORDS, *head, *middle, *tail, counts):
                    return run_node(node, values)
            src_shapes += [(int(c),) for c in counts]
        try:
            group = np.broadcast_shapes(*src_shapes)
        except ValueError:
            return run_node(node, values)  # index arrays that do not broadcast: IndexError
        target = []
        for o in lay.outs:
            if o[0] == "g":
                target.append(group[o[1]])
            elif o[0] == "new":
                target.append(1)
            else:
                ax = lay.axes[o[1]]
                target.append(int(head[-1][3 * ax[1] + 2]) if ax[0] == "slice" else shape[o[1]])
        target_t = tuple(target)
        if take:
            out = alloc(target_t)
        else:
            v = vals[1]
            if v.shape != target_t[out_ndim - v.ndim:] and any(
                    d not in (1, t) for d, t in zip(v.shape, target_t[out_ndim - v.ndim:])):
                return run_node(node, values)  # cannot broadcast: the reference's ValueError
            out = alloc(shape)
        if cf(MAIN, MAIN, *head, *middle, *tail, out):
            return run_node(node, values)
        return [out]

    return run
