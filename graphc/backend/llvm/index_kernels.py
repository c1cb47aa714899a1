"""Kernels for indexing with one integer array on the first axis: ``x[idx]`` (a row
gather, as an embedding lookup) and its update ``set_subtensor``/``inc_subtensor``
(its gradient: ``np.add.at``, which is slow in NumPy).

Every index is checked before use: NumPy's wrap-around for ``-n <= i < 0``, and
anything else out of ``[0, n)`` stops the kernel (status 1) before any access, so the
reference raises its IndexError. Rows are copied by loops over the remaining axes with
the arrays' strides; the innermost runs on vectors when it is unit-stride. Repeated
indices accumulate (``inc``) or the last one wins (``set``), as in NumPy.

Every other index with an integer array or a boolean mask is laid out here too (which
axis of ``x`` and of the result comes from which index, as NumPy places broadcast index
dimensions) and run by the runner at the end of this file; its kernel's IR is built in
graphc.backend.llvm.index_adv_kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir

from graphc.backend.llvm.irutil import I32, I64, NATIVE_DTYPES, is_float, is_signed
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
from graphc.backend.llvm.reduce_kernels import _contiguous_strides
from graphc.backend.reference import run_node
from graphc.graph.basic import Apply
from graphc.ops.subtensor import SYM, IncSubtensor, Subtensor, _pair_inputs

Runner = Callable[[list[Any]], list[Any]]
_FORM = (("a",),)  # x[idx]: one integer array indexing the first axis


def _row_index(b: ir.IRBuilder, idx: Arr, off: ir.Value, n: ir.Value) -> tuple[ir.Value, ir.Value]:
    """(the index as a row number, whether it is in range), NumPy's negative indices wrapped
    (a uint64 index beyond 2**63 reads as negative, as NumPy's conversion to intp does)."""
    v = idx.load(off)
    wide = v if v.type.width == 64 else (b.sext(v, I64) if is_signed(idx.dtype) else b.zext(v, I64))
    neg = b.icmp_signed("<", wide, c64(0))
    row = b.select(neg, b.add(wide, n), wide)
    ok = b.and_(b.icmp_signed(">=", row, c64(0)), b.icmp_signed("<", row, n))
    return row, ok


def _guarded(b: ir.IRBuilder, status: ir.Value, ok: ir.Value, body: Callable[[], None]) -> None:
    with b.if_else(ok) as (good, bad):
        with good:
            body()
        with bad:
            b.store(ir.Constant(I32, 1), status)


def build_take(module: ir.Module, name: str, dtype: str, idtype: str, xnd: int, qnd: int) -> None:
    """``out[k..., rest...] = x[idx[k...], rest...]`` with ``out`` C-contiguous."""
    fn, b, (px, pi, po) = new_kernel(module, name, 3)
    x, idx = Arr(b, px, dtype, xnd), Arr(b, pi, idtype, qnd)
    out = Arr(b, po, dtype, qnd + xnd - 1)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    rest = x.dims[1:]
    rstr = _contiguous_strides(b, rest)
    row_size = c64(1)
    for d in rest:
        row_size = b.mul(row_size, d)
    qstr = _contiguous_strides(b, idx.dims)

    def one(offs: list[ir.Value]) -> None:
        io, oo = offs
        r, ok = _row_index(b, idx, io, x.dims[0])

        def copy() -> None:
            base = b.mul(r, x.strides[0])
            nest(b, rest, [x.strides[1:], rstr], [base, b.mul(oo, row_size)],
                 lambda o: out.store(x.load(o[0]), o[1]))

        _guarded(b, status, ok, copy)

    nest(b, idx.dims, [idx.strides, qstr], [c64(0), c64(0)], one)
    b.ret(b.load(status, typ=I32))


def build_update(module: ir.Module, name: str, dtype: str, idtype: str, xnd: int, qnd: int, ynd: int,
                 set_: bool) -> None:
    """``out = copy(x)``; then ``out[idx[k...], rest...] (+)= y[k..., rest...]`` (y broadcast)."""
    fn, b, (px, py, pi, po) = new_kernel(module, name, 4)
    x, y, idx = Arr(b, px, dtype, xnd), Arr(b, py, dtype, ynd), Arr(b, pi, idtype, qnd)
    out = Arr(b, po, dtype, xnd)
    status = entry_alloca(b, I32)
    b.store(ir.Constant(I32, 0), status)
    ostr = _contiguous_strides(b, x.dims)
    nest(b, x.dims, [x.strides, ostr], [c64(0), c64(0)], lambda o: out.store(x.load(o[0]), o[1]))
    # y aligned to the right of the target shape idx.shape + x.shape[1:], broadcast.
    tnd = qnd + xnd - 1
    ystr = [y.bstride(d - (tnd - ynd)) if d >= tnd - ynd else c64(0) for d in range(tnd)]
    rest = x.dims[1:]

    def one(offs: list[ir.Value]) -> None:
        io, yo = offs
        r, ok = _row_index(b, idx, io, x.dims[0])

        def update() -> None:
            def put(o: list[ir.Value]) -> None:
                v = y.load(o[1])
                if not set_:
                    old = out.load(o[0])
                    v = b.fadd(old, v) if is_float(dtype) else b.add(old, v)
                out.store(v, o[0])

            nest(b, rest, [ostr[1:], ystr[qnd:]], [b.mul(r, ostr[0]), yo], put)

        _guarded(b, status, ok, update)

    nest(b, idx.dims, [idx.strides, ystr[:qnd]], [c64(0), c64(0)], one)
    b.ret(b.load(status, typ=I32))


def _ok_dtypes(dtype: str, idtype: str) -> bool:
    return dtype in NATIVE_DTYPES and idtype in NATIVE_DTYPES and idtype != "bool" and not is_float(idtype)


@register_lowering(Subtensor)
def lower_take(node: Apply) -> NativeNode | None:
    if node.op.idx_list != _FORM:
        return lower_adv(node)
    x, idx = node.inputs
    if x.ndim < 1 or not _ok_dtypes(x.dtype, idx.dtype):
        return None
    name = kernel_id("gctake", x.dtype, idx.dtype, x.ndim, idx.ndim)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            a, ix = get(values)
            out = alloc(ix.shape + a.shape[1:])
            if cfunc(0, 0, a, ix, out):
                return run_node(node, values)  # an index out of range: the reference's IndexError
            return [out]

        return run

    return NativeNode(name, 3, lambda m: build_take(m, name, x.dtype, idx.dtype, x.ndim, idx.ndim), runner)


@register_lowering(IncSubtensor)
def lower_update(node: Apply) -> NativeNode | None:
    if node.op.idx_list != _FORM:
        return lower_adv(node)
    x, y, idx = node.inputs
    if x.ndim < 1 or y.dtype != x.dtype or not _ok_dtypes(x.dtype, idx.dtype):
        return None
    set_ = node.op.set_instead_of_inc
    if not set_ and x.dtype == "bool":
        return None
    name = kernel_id("gcupdate", x.dtype, idx.dtype, x.ndim, idx.ndim, y.ndim, set_)

    def runner(cfunc: Callable[..., int]) -> Runner:
        gate = Gate(node)
        get, alloc = gate.getter((0, 1, 2)), gate.allocator(0)

        def run(values: list[Any]) -> list[Any]:
            a, v, ix = get(values)
            target = ix.shape + a.shape[1:]
            if v.shape != target:
                try:
                    if np.broadcast_shapes(v.shape, target) != target:
                        return run_node(node, values)
                except ValueError:
                    return run_node(node, values)  # raises the reference's error
            out = alloc(a.shape)
            if cfunc(0, 0, a, v, ix, out):
                return run_node(node, values)
            return [out]

        return run

    return NativeNode(name, 4, lambda m: build_update(m, name, x.dtype, idx.dtype, x.ndim, idx.ndim, y.ndim,
                                                      set_), runner)


# -- every other advanced index: the layout and the runner (the kernels: index_adv_kernels) ---------
COUNT, COORDS, MAIN = 0, 1, 2  # the advanced kernels' phases (their ``start`` argument)
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
    from graphc.backend.llvm.index_adv_kernels import Spec, build  # it imports this module

    mode = "take" if take else ("set" if op.set_instead_of_inc else "inc")
    spec = Spec(mode, x.dtype, x.ndim, 0 if take else node.inputs[1].ndim, lay,
                tuple(ins[p].dtype for p in lay.arrays + lay.syms))
    name = kernel_id("gcadvidx", spec)
    return NativeNode(name, spec.nargs(), lambda m: build(m, name, spec), lambda cf: _runner(node, spec, cf))


def _target_fn(lay: Layout) -> Callable[[tuple, tuple, Any], tuple]:
    """``target(x.shape, group, params)``: the shape of ``x[idx]``, as generated code (the
    runner's per-call cost)."""
    parts = []
    for o in lay.outs:
        if o[0] == "g":
            parts.append(f"group[{o[1]}]")
        elif o[0] == "new":
            parts.append("1")
        else:
            ax = lay.axes[o[1]]
            parts.append(f"int(params[{3 * ax[1] + 2}])" if ax[0] == "slice" else f"shape[{o[1]}]")
    return eval(f"lambda shape, group, params: ({', '.join(parts)},)")  # noqa: S307 -- our own text


def _group(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    """The broadcast shape of the index arrays, None when they do not broadcast."""
    first = shapes[0]
    if all(s == first for s in shapes):
        return first
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


def _runner(node: Apply, spec: Any, cf: Callable[..., int]) -> Runner:
    lay = spec.lay
    take = spec.mode == "take"
    gate = Gate(node)
    get, alloc = gate.getter(range(len(node.inputs))), gate.allocator(0)
    n_masks = len(lay.masks)
    out_ndim = len(lay.outs)
    middle_pos = lay.arrays + lay.masks_pos + lay.syms
    target_of = _target_fn(lay)

    def run(values: list[Any]) -> list[Any]:
        vals = get(values)
        a = vals[0]
        shape = a.shape
        head = [a] if take else [a, vals[1]]
        params = None
        if lay.slices:
            params = _slice_params(lay, vals, shape)
            if params is None:
                return run_node(node, values)
            head.append(params)
        middle = [vals[p] for p in middle_pos]
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
            sizes = counts.tolist()
            if lay.direct:
                tail = [counts]
            else:
                tail = [np.empty((k, c), np.int64) for (_, k, _), c in zip(lay.masks, sizes)]
                tail.append(counts)
                if cf(COORDS, COORDS, *head, *middle, *tail, counts):
                    return run_node(node, values)
            src_shapes += [(c,) for c in sizes]
        group = _group(src_shapes)
        if group is None:
            return run_node(node, values)  # index arrays that do not broadcast: IndexError
        target = target_of(shape, group, params)
        if take:
            out = alloc(target)
        else:
            v = vals[1]
            vt = target[out_ndim - v.ndim:]
            if v.shape != vt and any(d not in (1, t) for d, t in zip(v.shape, vt)):
                return run_node(node, values)  # cannot broadcast: the reference's ValueError
            out = alloc(shape)
        if cf(MAIN, MAIN, *head, *middle, *tail, out):
            return run_node(node, values)
        return [out]

    return run
